"""Where one broadcast stands on every targeted device, as the events come in."""

from __future__ import annotations

import asyncio
import secrets
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from speakerctl.clock import Clock, to_ms
from speakerctl.protocol import DeliveryEvent, Reason
from speakerctl.protocol.lifecycle import (
    ACCEPTED,
    EXPIRED,
    FAILED,
    FINAL,
    NEEDS_REASON,
    PENDING,
    REPORTED,
    SOUNDED,
    STOPPED,
    UNREACHED,
    DeliveryState,
    recorded,
    supersedes,
)
from speakerctl.store import DeliveryInfo


@dataclass(slots=True)
class DeviceProgress:
    """One device's latest state in this broadcast."""

    state: DeliveryState = PENDING
    reason: str | None = None
    variant: str | None = None
    cached: bool = False


_ANY = "*"
"""Wanted by a device whose state was replayed from the store, naming no variant: it may wait for any."""


def _wanted(progress: DeviceProgress) -> str | None:
    """The variant this device waits to be uploaded (`_ANY`: one not known), or None."""
    if progress.cached:
        return None
    if progress.variant is not None:
        return progress.variant
    return _ANY if progress.state is ACCEPTED else None


class Tracker:
    """Per-device progress of one broadcast; `done` is set when every device is final."""

    def __init__(self, broadcast_id: str, device_ids: list[str], online: set[str], clock: Clock) -> None:
        self.broadcast_id = broadcast_id
        self.clock = clock
        self.devices = {d: DeviceProgress() for d in device_ids}
        self.online = online & set(device_ids)
        self.quiet: set[str] = set()
        """Devices that answer with `playing` alone (v1.3, content cached): the accept window skips them."""
        self.done = asyncio.Event()
        self.changed = asyncio.Event()
        self._open = len(device_ids)
        self._wanting: Counter[str] = Counter()
        """Devices waiting for each variant's upload, kept as events arrive: the uploader asks every 20 ms."""
        self._sounded = 0
        self.started_at = clock.monotonic()
        self.all_playing_at: float | None = None
        if not device_ids:
            self.done.set()

    def update(self, event: DeliveryEvent) -> bool:
        """Apply an event if the lifecycle lets it replace the device's state; True if it did."""
        progress = self.devices.get(event.device_id)
        state = recorded(event.state, event.reason)
        if progress is None or not supersedes(state, progress.state):
            return False
        was_final, wanted = progress.state in FINAL, _wanted(progress)
        if progress.state not in SOUNDED and state in SOUNDED:
            self._count_sounded()
        progress.state = state
        progress.reason = event.reason.value if event.reason else None
        if event.sha256 is not None:  # `accepted`, or a compact `playing` (v1.3)
            progress.variant, progress.cached = event.sha256, event.cached
        self._rewant(wanted, _wanted(progress))
        self._settle(progress, was_final)
        return True

    def _rewant(self, before: str | None, after: str | None) -> None:
        if before == after:
            return
        if before is not None:
            self._wanting[before] -= 1
        if after is not None:
            self._wanting[after] += 1

    def _count_sounded(self) -> None:
        self._sounded += 1
        if self._sounded == len(self.devices):
            self.all_playing_at = self.clock.monotonic()

    def issued(self) -> None:
        """The play is stamped now (its `issued_at`), right before its publish: reach latency counts
        from here, as the store's does (fleetview.reach_latency_s), not from the content reads and
        upload tasks set up before it."""
        self.started_at = self.clock.monotonic()

    @property
    def reach_latency_s(self) -> float | None:
        """Seconds from the play's stamp (else the tracker's start) until every device was playing it."""
        return None if self.all_playing_at is None else self.all_playing_at - self.started_at

    def _settle(self, progress: DeviceProgress, was_final: bool = False) -> None:
        if progress.state in FINAL and not was_final:
            self._open -= 1
            if self._open == 0:
                self.done.set()
        self.changed.set()

    def awaiting_accept(self) -> int:
        """Online devices that have not yet accepted."""
        return sum(self.devices[d].state == PENDING for d in self.online - self.quiet)

    def needs(self, sha256: str) -> bool:
        """Whether any device accepted this variant (or one not known) without having it cached."""
        return self._wanting[sha256] > 0 or self._wanting[_ANY] > 0

    def counts(self) -> Counter[str]:
        """How many devices are in each state."""
        return Counter(p.state.value for p in self.devices.values())

    @property
    def stopped(self) -> int:
        """Devices recorded `stopped` (an operator stopped the broadcast there)."""
        return sum(p.state is STOPPED for p in self.devices.values())

    def open_devices(self) -> list[str]:
        """Devices not yet in a final state."""
        return [d for d, p in self.devices.items() if p.state not in FINAL]

    def replay(self, deliveries: Iterable[DeliveryInfo]) -> None:
        """Apply what the store knows of each device (forward only, by the lifecycle)."""
        for delivery in deliveries:
            if delivery.state in REPORTED | {STOPPED} and delivery.device_id in self.devices:
                self.update(_stored_event(self.broadcast_id, delivery))

    def mark_unreached(self) -> None:
        """Close every device that never reported a final state."""
        for device_id in self.open_devices():
            progress = self.devices[device_id]
            wanted = _wanted(progress)
            progress.state, progress.reason = UNREACHED, "timeout"
            self._rewant(wanted, _wanted(progress))
            self._settle(progress)


def _stored_event(broadcast_id: str, delivery: DeliveryInfo) -> DeliveryEvent:
    """A stored delivery as the event that would have put it there (its variant was not stored)."""
    state = FAILED if delivery.state is STOPPED else delivery.state  # as the device said it
    reason = Reason(delivery.reason) if delivery.reason in set(Reason) else None
    if state in NEEDS_REASON and reason is None:
        reason = Reason.EXPIRED if state is EXPIRED else Reason.PLAYBACK_ERROR
    if delivery.state is STOPPED:
        reason = Reason.STOPPED
    return DeliveryEvent(
        secrets.token_hex(8),
        delivery.device_id,
        to_ms(delivery.updated_at),
        broadcast_id,
        state,
        reason,
        cached=delivery.cached,
    )
