"""The store's public values: plain frozen dataclasses, the delivery state machine; no I/O."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Protocol

from speakerctl.clock import from_ms
from speakerctl.errors import NotFound, StoreError
from speakerctl.fleet import Zone, ZoneTree
from speakerctl.protocol import DeliveryEvent, PreemptPolicy, Priority, Status
from speakerctl.protocol.lifecycle import REPORTED, DeliveryState, recorded


def utc_from_ms(ts_ms: int) -> datetime:
    """Aware UTC datetime from milliseconds since the epoch (exact, and total: clamped to years 1..9999)."""
    return from_ms(ts_ms)


def aware_utc(value: datetime, name: str) -> datetime:
    """`value` in UTC; a naive datetime is refused."""
    if value.tzinfo is None:
        raise StoreError(f"{name} must be a timezone-aware datetime, got naive {value.isoformat()}")
    return value.astimezone(UTC)


def zone_subtree(zones: Iterable[Zone], zone_ids: Collection[str]) -> frozenset[str]:
    """`zone_ids` and every zone below them, by the fleet's zone tree; NotFound if one is unknown."""
    tree = ZoneTree(zones)
    missing = tree.unknown(zone_ids)
    if missing:
        raise NotFound(f"zone {', '.join(map(repr, missing))} not found")
    return tree.subtree(zone_ids)


# The lifecycle's enum under the name the store has always used for it.
DeliveryStatus = DeliveryState


class BroadcastState(StrEnum):
    """Life of a broadcast as a whole."""

    RUNNING = "running"
    COMPLETE = "complete"
    INCOMPLETE = "incomplete"
    CANCELLED = "cancelled"
    STOPPED = "stopped"
    """An operator stopped it everywhere it was still to air (`stopped_by`, at `completed_at`)."""


class DeviceSpecLike(Protocol):
    """What `Store.sync_devices` needs of a device: its inventory fields."""

    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def zone_id(self) -> str: ...
    @property
    def model(self) -> str: ...
    @property
    def lat(self) -> float | None: ...
    @property
    def lon(self) -> float | None: ...
    @property
    def network(self) -> str: ...


@dataclass(frozen=True, slots=True)
class DeviceSpec:
    """A device as the fleet inventory describes it."""

    id: str
    name: str
    zone_id: str
    model: str
    lat: float | None = None
    lon: float | None = None
    network: str = "wired"


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """A device's inventory fields and its latest reported status (None: never heard)."""

    id: str
    name: str
    zone_id: str
    model: str
    lat: float | None
    lon: float | None
    network: str
    online: bool = False
    last_seen: datetime | None = None
    status_ts: datetime | None = None
    firmware: str | None = None
    volume: int | None = None
    playing: str | None = None
    amplifier: str | None = None
    power_source: str | None = None
    battery_pct: int | None = None
    link_network: str | None = None
    rssi_dbm: int | None = None
    uptime_s: int | None = None
    cached_count: int | None = None
    temperature_c: float | None = None
    storage_free_mb: int | None = None
    clock_offset_ms: int | None = None


@dataclass(frozen=True, slots=True)
class VariantInfo:
    """One encoding of a bulletin, for players of one codec."""

    codec: str
    container: str
    bitrate_kbps: int
    sha256: str
    size: int
    duration_ms: int


@dataclass(frozen=True, slots=True)
class BulletinInfo:
    """An imported audio bulletin, identified by the hash of its encoded content."""

    id: int
    title: str
    sha256: str
    codec: str
    container: str
    bitrate_kbps: int
    duration_ms: int
    size: int
    source_name: str
    created_at: datetime
    created_by: str
    loudness_lufs: float | None = None
    """Integrated loudness of the primary encoding, measured after processing."""
    true_peak_dbtp: float | None = None
    profile: str = "speech"


@dataclass(frozen=True, slots=True)
class BroadcastInfo:
    """One broadcast of a bulletin to a set of zones and devices."""

    id: str
    bulletin_id: int
    priority: Priority
    targets: tuple[str, ...]
    created_at: datetime
    issued_at: datetime
    expires_at: datetime
    state: BroadcastState
    completed_at: datetime | None = None
    start_at: datetime | None = None
    """When the clusters were told to start it (None: at once); a resumed play keeps it."""
    volume: int | None = None
    on_preempt: PreemptPolicy = PreemptPolicy.DROP
    owner: str = ""
    """The client id of the controller that sent it: `serve` resumes its own at start-up."""
    started_by: str = ""
    """The user who started it ("" before users were recorded; the schedule's runner for an airing)."""
    stopped_by: str = ""
    """The user who stopped it, when its state is `stopped`."""
    approved_by: str = ""
    """The user who let it air: its approver, or the sender when their zone's policy needs no approval."""
    published_at: datetime | None = None
    """When its play was last published to every target topic (None: maybe never in full)."""


@dataclass(frozen=True, slots=True)
class StopOrder:
    """A stop to record: which clusters, by whom, when, and whether it ends the whole broadcast."""

    device_ids: tuple[str, ...]
    by: str
    at: datetime
    detail: str
    whole: bool


@dataclass(frozen=True, slots=True)
class DeliveryInfo:
    """Where one broadcast stands on one device, with when each stage was reached."""

    broadcast_id: str
    device_id: str
    state: DeliveryStatus
    reason: str | None
    detail: str
    cached: bool
    updated_at: datetime
    accepted_at: datetime | None = None
    content_ready_at: datetime | None = None
    playing_at: datetime | None = None
    finished_at: datetime | None = None
    zone_id: str | None = None
    """The zone the cluster was in when the broadcast was made (None: not recorded)."""


@dataclass(frozen=True, slots=True)
class DeliveryUpdate:
    """A device-reported delivery state to apply; `state` must be one a device can report."""

    broadcast_id: str
    device_id: str
    state: DeliveryStatus
    reason: str | None
    detail: str
    ts_ms: int
    cached: bool = False

    def __post_init__(self) -> None:
        try:
            state = DeliveryStatus(self.state)
        except ValueError as exc:
            raise StoreError(f"unknown delivery state {self.state!r}") from exc
        if state not in REPORTED:
            raise StoreError(f"a device cannot report the delivery state {state.value!r}")
        object.__setattr__(self, "state", recorded(state, self.reason))

    @property
    def at(self) -> datetime:
        """The event's time stamp."""
        return utc_from_ms(self.ts_ms)

    @classmethod
    def from_event(cls, event: DeliveryEvent) -> DeliveryUpdate:
        """The update a device's delivery event asks for."""
        return cls(
            broadcast_id=event.broadcast_id,
            device_id=event.device_id,
            state=event.state,
            reason=event.reason.value if event.reason else None,
            detail=event.detail,
            ts_ms=event.ts_ms,
            cached=event.cached,
        )


@dataclass(frozen=True, slots=True)
class StatusRecord:
    """One status message as recorded in a device's history."""

    device_id: str
    received_at: datetime
    online: bool
    status: Status
