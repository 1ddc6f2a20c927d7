"""Where one broadcast stands on every targeted device, as the events come in."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass

from speakerctl.clock import Clock
from speakerctl.protocol import DeliveryEvent, DeliveryState

PENDING = "pending"
UNREACHED = "unreached"
RANK = {
    PENDING: 0,
    DeliveryState.ACCEPTED.value: 1,
    DeliveryState.CONTENT_READY.value: 2,
    DeliveryState.PLAYING.value: 3,
    DeliveryState.FINISHED.value: 4,
    DeliveryState.FAILED.value: 4,
    DeliveryState.EXPIRED.value: 4,
    UNREACHED: 4,
}
FINAL = frozenset(s for s, rank in RANK.items() if rank == 4)


@dataclass(slots=True)
class DeviceProgress:
    """One device's latest state in this broadcast."""

    state: str = PENDING
    reason: str | None = None
    variant: str | None = None
    cached: bool = False


class Tracker:
    """Per-device progress of one broadcast; `done` is set when every device is final."""

    def __init__(self, broadcast_id: str, device_ids: list[str], online: set[str], clock: Clock) -> None:
        self.broadcast_id = broadcast_id
        self.clock = clock
        self.devices = {d: DeviceProgress() for d in device_ids}
        self.online = online & set(device_ids)
        self.done = asyncio.Event()
        self.changed = asyncio.Event()
        self._open = len(device_ids)
        self._sounded = 0
        self.started_at = clock.monotonic()
        self.all_playing_at: float | None = None
        if not device_ids:
            self.done.set()

    def update(self, event: DeliveryEvent) -> bool:
        """Apply an event if it moves the device forward; True if it did."""
        progress = self.devices.get(event.device_id)
        if progress is None or RANK[event.state.value] <= RANK[progress.state]:
            return False
        if progress.state in FINAL:
            return False
        if RANK[progress.state] < RANK[DeliveryState.PLAYING.value] <= RANK[event.state.value]:
            self._count_sounded(event.state)
        progress.state = event.state.value
        progress.reason = event.reason.value if event.reason else None
        if event.state is DeliveryState.ACCEPTED:
            progress.variant, progress.cached = event.sha256, event.cached
        self._settle(progress)
        return True

    def _count_sounded(self, state: DeliveryState) -> None:
        if state in (DeliveryState.PLAYING, DeliveryState.FINISHED):
            self._sounded += 1
            if self._sounded == len(self.devices):
                self.all_playing_at = self.clock.monotonic()

    @property
    def reach_latency_s(self) -> float | None:
        """Seconds from the start of the broadcast until every device was playing it."""
        return None if self.all_playing_at is None else self.all_playing_at - self.started_at

    def _settle(self, progress: DeviceProgress) -> None:
        if progress.state in FINAL:
            self._open -= 1
            if self._open == 0:
                self.done.set()
        self.changed.set()

    def awaiting_accept(self) -> int:
        """Online devices that have not yet accepted."""
        return sum(self.devices[d].state == PENDING for d in self.online)

    def needs(self, sha256: str) -> bool:
        """Whether any device accepted this variant without having it cached."""
        return any(p.variant == sha256 and not p.cached for p in self.devices.values())

    def counts(self) -> Counter[str]:
        """How many devices are in each state."""
        return Counter(p.state for p in self.devices.values())

    def open_devices(self) -> list[str]:
        """Devices not yet in a final state."""
        return [d for d, p in self.devices.items() if p.state not in FINAL]

    def mark_unreached(self) -> None:
        """Close every device that never reported a final state."""
        for device_id in self.open_devices():
            progress = self.devices[device_id]
            progress.state, progress.reason = UNREACHED, "timeout"
            self._settle(progress)
