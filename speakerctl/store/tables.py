"""SQLModel tables and their mappers to the public dataclasses; nothing else sees them."""

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import BigInteger, DateTime, Dialect, Text, TypeDecorator
from sqlmodel import Field, SQLModel

from speakerctl.fleet import Zone, ZoneKind
from speakerctl.protocol import PreemptPolicy, Priority, Status
from speakerctl.protocol.lifecycle import DEVICE_FINAL, STOPPED
from speakerctl.store.models import (
    BroadcastInfo,
    BroadcastState,
    BulletinInfo,
    DeliveryInfo,
    DeliveryStatus,
    DeliveryUpdate,
    DeviceInfo,
    DeviceSpecLike,
    StatusRecord,
    VariantInfo,
    utc_from_ms,
)


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime on both sides; SQLite stores it naive, in UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """To UTC; naive for SQLite, which would drop the offset without converting."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass an aware UTC datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Back to an aware UTC datetime."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class ZoneRow(SQLModel, table=True):
    """An administrative zone; `parent_id` builds the tree."""

    __tablename__ = "zones"

    id: str = Field(primary_key=True)
    name: str
    kind: str
    parent_id: str | None = Field(default=None, index=True)
    position: int = 0
    retired_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    """Set by a remap (`zones remap --apply`): the zone stays for history, hidden from lists and targets."""

    def info(self) -> Zone:
        """Public value: the fleet's zone record."""
        return Zone(self.id, self.name, ZoneKind(self.kind), self.parent_id)

    def update(self, zone: Zone, position: int) -> None:
        """Take the fields of `zone`, at `position` in the inventory."""
        self.name, self.kind = zone.name, zone.kind
        self.parent_id, self.position = zone.parent, position


class DeviceRow(SQLModel, table=True):
    """A device: inventory fields, then its latest status (None until first heard)."""

    __tablename__ = "devices"

    id: str = Field(primary_key=True)
    name: str
    zone_id: str = Field(foreign_key="zones.id", index=True)
    model: str
    lat: float | None = None
    lon: float | None = None
    network: str = "wired"
    online: bool = False
    last_seen: datetime | None = Field(default=None, sa_type=UTCDateTime)
    status_ts_ms: int | None = Field(default=None, sa_type=BigInteger)
    firmware: str | None = None
    volume: int | None = None
    playing: str | None = None
    amplifier: str | None = None
    power_source: str | None = None
    battery_pct: int | None = None
    link_network: str | None = None
    rssi_dbm: int | None = None
    uptime_s: int | None = Field(default=None, sa_type=BigInteger)
    cached_count: int | None = None
    temperature_c: float | None = None
    storage_free_mb: int | None = Field(default=None, sa_type=BigInteger)
    clock_offset_ms: int | None = Field(default=None, sa_type=BigInteger)

    @staticmethod
    def inventory(spec: DeviceSpecLike) -> dict[str, Any]:
        """The inventory columns of `spec`, for a bulk insert."""
        return {name: getattr(spec, name) for name in _INVENTORY_FIELDS}

    def update(self, spec: DeviceSpecLike) -> None:
        """Take the inventory fields of `spec`, keeping the status."""
        self.name, self.zone_id, self.model = spec.name, spec.zone_id, spec.model
        self.lat, self.lon, self.network = spec.lat, spec.lon, spec.network

    def info(self) -> DeviceInfo:
        """Public value."""
        return device_info([getattr(self, name) for name in INFO_COLUMNS])


STATE_COLUMNS = (
    "online", "last_seen", "status_ts_ms", "firmware", "volume", "playing", "amplifier", "uptime_s",
    "power_source", "battery_pct", "link_network", "rssi_dbm", "cached_count", "temperature_c",
    "storage_free_mb", "clock_offset_ms",
)  # fmt: skip
"""The device columns a status report writes: its current state, read and written in bulk."""


def take_status(state: dict[str, Any], status: Status, received_at: datetime) -> bool:
    """Apply `status` to a device's `state` (STATE_COLUMNS) unless older than it; whether it was taken."""
    if not status.online and status.ts_ms == 0:
        # A Last Will carries no time stamp: it always means offline (once: a redelivery is a no-op).
        taken, state["online"] = state["online"], False
        return bool(taken)
    stored_ts = state["status_ts_ms"]
    if stored_ts is not None and status.ts_ms < stored_ts:
        return False  # a stale retained message must not overwrite newer state
    fields = _status_columns(status)
    if status.ts_ms == stored_ts and all(state[k] == v for k, v in fields.items()):
        return False  # redelivered (QoS 1, or to another controller of a shared group): no new row
    state.update(fields)
    state["last_seen"], state["status_ts_ms"] = received_at, status.ts_ms
    return True


def _status_columns(status: Status) -> dict[str, object]:
    """The device columns a status sets, by name (the same status redelivered sets the same values)."""
    return {
        "online": status.online,
        "firmware": status.firmware,
        "volume": status.volume,
        "playing": status.playing,
        "amplifier": status.amplifier,
        "uptime_s": status.uptime_s,
        "power_source": status.power.source,
        "battery_pct": status.power.battery_pct,
        "link_network": status.link.network,
        "rssi_dbm": status.link.rssi_dbm,
        "cached_count": status.cached_count,
        "temperature_c": status.temperature_c,
        "storage_free_mb": status.storage_free_mb,
        "clock_offset_ms": status.clock_offset_ms,
    }


_INVENTORY_FIELDS = ("id", "name", "zone_id", "model", "lat", "lon", "network")
_DEVICE_FIELDS = tuple(n for n in DeviceInfo.__dataclass_fields__ if n != "status_ts")
INFO_COLUMNS = (*_DEVICE_FIELDS, "status_ts_ms")
"""The device columns a DeviceInfo is made of, in the order `device_info` takes them."""


def device_info(values: Sequence[Any]) -> DeviceInfo:
    """A DeviceInfo from the values of INFO_COLUMNS: a row of a Core select, no ORM object per device."""
    *fields, ts_ms = values
    status_ts = None if ts_ms is None else utc_from_ms(ts_ms)
    return DeviceInfo(**dict(zip(_DEVICE_FIELDS, fields, strict=True)), status_ts=status_ts)


class BulletinRow(SQLModel, table=True):
    """An imported bulletin."""

    __tablename__ = "bulletins"

    id: int | None = Field(default=None, primary_key=True)
    title: str
    sha256: str = Field(index=True)
    codec: str
    container: str
    bitrate_kbps: int
    duration_ms: int = Field(sa_type=BigInteger)
    size: int = Field(sa_type=BigInteger)
    source_name: str
    created_at: datetime = Field(sa_type=UTCDateTime)
    created_by: str
    loudness_lufs: float | None = None
    true_peak_dbtp: float | None = None
    profile: str = "speech"
    removed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    """Set by `bulletin rm`: the row stays so the broadcasts that aired it keep their history."""

    def info(self) -> BulletinInfo:
        """Public value."""
        assert self.id is not None, "flush before reading a new bulletin's id"
        fields = {n: getattr(self, n) for n in BulletinInfo.__dataclass_fields__ if n != "id"}
        return BulletinInfo(id=self.id, **fields)


class VariantRow(SQLModel, table=True):
    """One encoding of a bulletin (a bulletin has one per codec the fleet plays)."""

    __tablename__ = "bulletin_variants"

    bulletin_id: int = Field(foreign_key="bulletins.id", primary_key=True)
    codec: str = Field(primary_key=True)
    container: str
    bitrate_kbps: int
    sha256: str = Field(index=True)
    size: int = Field(sa_type=BigInteger)
    duration_ms: int = Field(sa_type=BigInteger)
    position: int = 0

    def info(self) -> VariantInfo:
        """Public value."""
        return VariantInfo(
            self.codec, self.container, self.bitrate_kbps, self.sha256, self.size, self.duration_ms
        )


class BroadcastRow(SQLModel, table=True):
    """A broadcast; `targets` is a JSON list of the zone and device ids it was addressed to."""

    __tablename__ = "broadcasts"

    id: str = Field(primary_key=True)
    bulletin_id: int = Field(foreign_key="bulletins.id", index=True)
    priority: int
    targets: str = Field(sa_type=Text)
    created_at: datetime = Field(sa_type=UTCDateTime, index=True)
    issued_at: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    state: str = BroadcastState.RUNNING.value
    completed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    start_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    volume: int | None = None
    on_preempt: str = Field(default=PreemptPolicy.DROP.value, max_length=16)
    owner: str = Field(default="", max_length=128)
    started_by: str = Field(default="", max_length=128)
    stopped_by: str = Field(default="", max_length=128)
    approved_by: str = Field(default="", max_length=64)
    published_at: datetime | None = Field(default=None, sa_type=UTCDateTime)

    def info(self) -> BroadcastInfo:
        """Public value."""
        return BroadcastInfo(
            id=self.id,
            bulletin_id=self.bulletin_id,
            priority=Priority(self.priority),
            targets=tuple(json.loads(self.targets)),
            created_at=self.created_at,
            issued_at=self.issued_at,
            expires_at=self.expires_at,
            state=BroadcastState(self.state),
            completed_at=self.completed_at,
            start_at=self.start_at,
            volume=self.volume,
            on_preempt=PreemptPolicy(self.on_preempt),
            owner=self.owner,
            started_by=self.started_by,
            stopped_by=self.stopped_by,
            approved_by=self.approved_by,
            published_at=self.published_at,
        )


_STAMPS: dict[DeliveryStatus, str] = {
    DeliveryStatus.ACCEPTED: "accepted_at",
    DeliveryStatus.CONTENT_READY: "content_ready_at",
    DeliveryStatus.PLAYING: "playing_at",
    **dict.fromkeys(DEVICE_FINAL | {STOPPED}, "finished_at"),
}


class DeliveryRow(SQLModel, table=True):
    """One broadcast on one device; `finished_at` is when a device reported a final state."""

    __tablename__ = "deliveries"

    broadcast_id: str = Field(foreign_key="broadcasts.id", primary_key=True)
    device_id: str = Field(foreign_key="devices.id", primary_key=True, index=True)
    zone_id: str | None = Field(default=None, max_length=64)
    """The zone the cluster was in when the broadcast was made: reports attribute the airing to it."""
    state: str = DeliveryStatus.PENDING.value
    reason: str | None = None
    detail: str = Field(default="", sa_type=Text)
    cached: bool = False
    updated_at: datetime = Field(sa_type=UTCDateTime)
    accepted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    content_ready_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    playing_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)

    def apply(self, update: DeliveryUpdate) -> None:
        """Take `update` (the caller has checked that it moves the delivery forward)."""
        at = update.at
        self.state, self.reason, self.detail = update.state.value, update.reason, update.detail
        self.cached = self.cached or update.cached
        self.updated_at = at
        stamp = _STAMPS[update.state]
        if getattr(self, stamp) is None:
            setattr(self, stamp, at)

    def info(self) -> DeliveryInfo:
        """Public value."""
        fields = {n: getattr(self, n) for n in DeliveryInfo.__dataclass_fields__ if n != "state"}
        return DeliveryInfo(state=DeliveryStatus(self.state), **fields)


class StatusHistoryRow(SQLModel, table=True):
    """One status message a device sent; `ts` is when the controller received it."""

    __tablename__ = "status_history"

    id: int | None = Field(default=None, primary_key=True)
    device_id: str = Field(foreign_key="devices.id", index=True)
    ts: datetime = Field(sa_type=UTCDateTime)
    online: bool
    payload: str = Field(sa_type=Text)

    @staticmethod
    def params(status: Status, received_at: datetime) -> dict[str, Any]:
        """The columns of a row recording `status`, for a bulk insert."""
        payload = orjson.dumps(status.to_wire()).decode()  # compact, as before; the flush's main JSON cost
        return {"device_id": status.device_id, "ts": received_at, "online": status.online, "payload": payload}

    def record(self) -> StatusRecord:
        """Public value."""
        wire: dict[str, Any] = json.loads(self.payload)
        return StatusRecord(self.device_id, self.ts, self.online, Status.from_wire(wire))
