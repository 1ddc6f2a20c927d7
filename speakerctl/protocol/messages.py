"""Typed messages of protocol v1 and their mappers to and from wire dicts; no I/O."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import Any

from speakerctl.errors import ProtocolError
from speakerctl.protocol import fields as f
from speakerctl.protocol.lifecycle import NEEDS_REASON, REPORTED, DeliveryState
from speakerctl.protocol.limits import (
    CHUNK_SIZE,
    MAX_CACHED_LISTED,
    MAX_CHUNKS,
    MAX_CLOCK_OFFSET_MS,
    MAX_CONTENT_SIZE,
    MAX_COUNT,
    MAX_DURATION_MS,
    MAX_MISSING_RANGES,
    MAX_PERCENT,
    MAX_PROTOCOL_REPORTED,
    MAX_RSSI_DBM,
    MAX_STORAGE_FREE_MB,
    MAX_TEMPERATURE_C,
    MAX_UPTIME_S,
    MAX_VARIANTS,
    MIN_RSSI_DBM,
    MIN_TEMPERATURE_C,
    PROTOCOL_VERSION,
)
from speakerctl.protocol.live import LiveEvent, LiveStart, LiveStop
from speakerctl.protocol.management import Ack, Configure, Ping, Reboot, SetVolume
from speakerctl.protocol.schedule import PreemptPolicy
from speakerctl.protocol.topics import Channel, check_id, check_sha256
from speakerctl.protocol.topics import parse as parse_topic

Wire = dict[str, Any]


class Priority(IntEnum):
    """The national priority levels; a higher value preempts a lower one."""

    NORMAL = 1
    PRIORITY = 2
    EMERGENCY = 3

    @property
    def wire(self) -> str:
        """Name on the wire."""
        return self.name.lower()

    @classmethod
    def parse(cls, value: object) -> Priority:
        """Priority from its wire name, or ProtocolError."""
        for level in cls:
            if value == level.wire:
                return level
        raise ProtocolError(f"priority must be normal, priority or emergency, got {value!r}")


class Reason(StrEnum):
    """Reason codes carried by failed and expired events."""

    CONTENT_INVALID = "content_invalid"
    CONTENT_TIMEOUT = "content_timeout"
    STORAGE_FULL = "storage_full"
    EXPIRED = "expired"
    PREEMPTED = "preempted"
    STOPPED = "stopped"
    PLAYBACK_ERROR = "playback_error"
    AMPLIFIER_FAULT = "amplifier_fault"
    UNSUPPORTED_CODEC = "unsupported_codec"
    REBOOTED = "rebooted"


@dataclass(frozen=True, slots=True)
class ContentRef:
    """A content item by hash, with what a device needs to fetch and play it."""

    sha256: str
    size: int
    codec: str
    duration_ms: int
    chunk_size: int = CHUNK_SIZE

    def __post_init__(self) -> None:
        check_sha256(self.sha256)
        f.check_range(self.size, 1, MAX_CONTENT_SIZE, "content size")
        f.check_range(self.duration_ms, 0, MAX_DURATION_MS, "duration_ms")
        if self.chunk_size != CHUNK_SIZE:
            raise ProtocolError(f"chunk_size must be {CHUNK_SIZE}, got {self.chunk_size}")
        f.check_token(self.codec, "codec")

    @property
    def chunks(self) -> int:
        """Number of chunk frames the content travels in."""
        return -(-self.size // self.chunk_size)

    def to_wire(self) -> Wire:
        """Wire dict."""
        return {
            "sha256": self.sha256,
            "size": self.size,
            "codec": self.codec,
            "duration_ms": self.duration_ms,
            "chunk_size": self.chunk_size,
            "chunks": self.chunks,
        }

    @classmethod
    def from_wire(cls, d: object) -> ContentRef:
        """Parse and validate."""
        w = f.obj(d, "content")
        ref = cls(
            sha256=f.req(w, "sha256", str),
            size=f.req(w, "size", int),
            codec=f.req(w, "codec", str),
            duration_ms=f.req(w, "duration_ms", int),
            chunk_size=f.req(w, "chunk_size", int),
        )
        if f.req(w, "chunks", int) != ref.chunks or ref.chunks > MAX_CHUNKS:
            raise ProtocolError("content.chunks does not match size / chunk_size")
        return ref


@dataclass(frozen=True, slots=True)
class Play:
    """Play a broadcast now or at a set time, from the first content variant the device can play."""

    broadcast_id: str
    variants: tuple[ContentRef, ...]
    start_at_ms: int | None = None
    volume: int | None = None
    title: str = ""
    on_preempt: PreemptPolicy = PreemptPolicy.DROP

    kind = "play"

    def __post_init__(self) -> None:
        f.check_token(self.broadcast_id, "broadcast_id")
        if self.start_at_ms is not None:
            f.check_timestamp(self.start_at_ms, "start_at")
        if not 0 < len(self.variants) <= MAX_VARIANTS:
            raise ProtocolError(f"a play command carries 1..{MAX_VARIANTS} content variants")
        if len({v.codec for v in self.variants}) != len(self.variants):
            raise ProtocolError("content variants must differ in codec")
        if self.volume is not None:
            f.check_range(self.volume, 0, MAX_PERCENT, "volume")
        f.check_text(self.title, "title")

    def variant_for(self, codecs: tuple[str, ...]) -> ContentRef | None:
        """The first variant whose codec is in `codecs`."""
        return next((v for v in self.variants if v.codec in codecs), None)

    def to_wire(self) -> Wire:
        """Wire dict."""
        return {
            "broadcast_id": self.broadcast_id,
            "content": [v.to_wire() for v in self.variants],
            "start_at": self.start_at_ms,
            "volume": self.volume,
            "title": self.title,
        } | ({"on_preempt": self.on_preempt.value} if self.on_preempt is not PreemptPolicy.DROP else {})

    @classmethod
    def from_wire(cls, w: Wire) -> Play:
        """Parse and validate."""
        policy = f.opt(w, "on_preempt", str)
        return cls(
            broadcast_id=f.req(w, "broadcast_id", str),
            variants=tuple(ContentRef.from_wire(v) for v in f.req(w, "content", list)),
            start_at_ms=f.opt(w, "start_at", int),
            volume=f.opt(w, "volume", int),
            title=f.opt(w, "title", str) or "",
            on_preempt=PreemptPolicy.DROP if policy is None else PreemptPolicy.parse(policy),
        )


@dataclass(frozen=True, slots=True)
class Stop:
    """Stop a broadcast wherever it is: queued, downloading or playing."""

    broadcast_id: str

    kind = "stop"

    def __post_init__(self) -> None:
        f.check_token(self.broadcast_id, "broadcast_id")

    def to_wire(self) -> Wire:
        """Wire dict."""
        return {"broadcast_id": self.broadcast_id}

    @classmethod
    def from_wire(cls, w: Wire) -> Stop:
        """Parse and validate."""
        return cls(broadcast_id=f.req(w, "broadcast_id", str))


Body = Play | Stop | SetVolume | Reboot | Ping | Configure | LiveStart | LiveStop
_BODIES: dict[str, type[Body]] = {
    b.kind: b for b in (Play, Stop, SetVolume, Reboot, Ping, Configure, LiveStart, LiveStop)
}
ZONE_KINDS = frozenset({Play.kind, Stop.kind, LiveStart.kind, LiveStop.kind})
"""Command kinds a zone topic may carry; management commands go to one device's topic only."""


def check_command_topic(topic: str, kind: str) -> str:
    """The topic, if it is a command topic that may carry a command of this kind."""
    channel = parse_topic(topic).channel
    if channel not in (Channel.DEVICE_CMD, Channel.ZONE_CMD):
        raise ProtocolError(f"{topic!r} is not a command topic")
    if channel is Channel.ZONE_CMD and kind not in ZONE_KINDS:
        raise ProtocolError(f"a {kind} command is never sent to a zone")
    return topic


@dataclass(frozen=True, slots=True)
class Command:
    """The signed envelope of everything the controller tells a device."""

    msg_id: str
    issued_at_ms: int
    expires_at_ms: int
    priority: Priority
    body: Body
    signature: str | None = None
    to: str | None = None
    """The command topic this copy is addressed to (signed, §4.4); None: an untargeted v1.0 command."""

    def __post_init__(self) -> None:
        f.check_token(self.msg_id, "id")
        if self.to is not None:
            check_command_topic(self.to, self.body.kind)
        f.check_timestamp(self.issued_at_ms, "issued_at")
        f.check_timestamp(self.expires_at_ms, "expires_at")
        if self.expires_at_ms <= self.issued_at_ms:
            raise ProtocolError("expires_at must be after issued_at")

    def expired(self, now_ms: int) -> bool:
        """Whether the command may no longer be acted on."""
        return now_ms >= self.expires_at_ms

    def to_wire(self) -> Wire:
        """Wire dict."""
        return {
            "v": PROTOCOL_VERSION,
            "kind": self.body.kind,
            "id": self.msg_id,
            "issued_at": self.issued_at_ms,
            "expires_at": self.expires_at_ms,
            "priority": self.priority.wire,
            "sig": self.signature,
            "body": self.body.to_wire(),
            **({"to": self.to} if self.to is not None else {}),
        }

    @classmethod
    def from_wire(cls, d: object) -> Command:
        """Parse and validate."""
        w = f.versioned(d, "command")
        kind = f.req(w, "kind", str)
        if kind not in _BODIES:
            raise ProtocolError(f"unknown command kind {kind!r}")
        return cls(
            msg_id=f.req(w, "id", str),
            issued_at_ms=f.req(w, "issued_at", int),
            expires_at_ms=f.req(w, "expires_at", int),
            priority=Priority.parse(w.get("priority")),
            body=_BODIES[kind].from_wire(f.obj(w.get("body"), "body")),
            signature=f.opt(w, "sig", str),
            to=f.opt(w, "to", str),
        )


@dataclass(frozen=True, slots=True)
class DeliveryEvent:
    """A device's report of where one broadcast stands on it."""

    msg_id: str
    device_id: str
    ts_ms: int
    broadcast_id: str
    state: DeliveryState
    reason: Reason | None = None
    detail: str = ""
    cached: bool = False
    sha256: str | None = None

    kind = "delivery"

    def __post_init__(self) -> None:
        f.check_event_head(self.msg_id, self.device_id, self.ts_ms)
        f.check_token(self.broadcast_id, "broadcast_id")
        f.check_text(self.detail, "detail")
        if self.state not in REPORTED:
            raise ProtocolError(f"a device cannot report the delivery state {self.state.value!r}")
        if self.state in NEEDS_REASON and self.reason is None:
            raise ProtocolError(f"a {self.state} event needs a reason")
        if self.sha256 is not None:
            check_sha256(self.sha256)

    def to_wire(self) -> Wire:
        """Wire dict."""
        return {
            **f.event_head(self.kind, self.msg_id, self.device_id, self.ts_ms),
            "broadcast_id": self.broadcast_id,
            "state": self.state.value,
            "reason": self.reason.value if self.reason else None,
            "detail": self.detail,
            "cached": self.cached,
            "sha256": self.sha256,
        }

    @classmethod
    def from_wire(cls, w: Wire) -> DeliveryEvent:
        """Parse and validate."""
        reason = f.opt(w, "reason", str)
        return cls(
            msg_id=f.req(w, "id", str),
            device_id=f.req(w, "device_id", str),
            ts_ms=f.req(w, "ts", int),
            broadcast_id=f.req(w, "broadcast_id", str),
            state=f.enum(DeliveryState, w.get("state"), "state"),
            reason=f.enum(Reason, reason, "reason") if reason is not None else None,
            detail=f.opt(w, "detail", str) or "",
            cached=bool(f.opt(w, "cached", bool)),
            sha256=f.opt(w, "sha256", str),
        )


Range = tuple[int, int]


@dataclass(frozen=True, slots=True)
class ContentRequest:
    """A device asks for chunks it is missing (inclusive index ranges)."""

    msg_id: str
    device_id: str
    ts_ms: int
    sha256: str
    missing: tuple[Range, ...]

    kind = "content_request"

    def __post_init__(self) -> None:
        f.check_event_head(self.msg_id, self.device_id, self.ts_ms)
        check_sha256(self.sha256)
        if not 0 < len(self.missing) <= MAX_MISSING_RANGES:
            raise ProtocolError(f"missing must list 1..{MAX_MISSING_RANGES} ranges")
        for lo, hi in self.missing:
            if not 0 <= lo <= hi < MAX_CHUNKS:
                raise ProtocolError(f"bad chunk range [{lo}, {hi}]")

    def to_wire(self) -> Wire:
        """Wire dict."""
        return {
            **f.event_head(self.kind, self.msg_id, self.device_id, self.ts_ms),
            "sha256": self.sha256,
            "missing": [list(r) for r in self.missing],
        }

    @classmethod
    def from_wire(cls, w: Wire) -> ContentRequest:
        """Parse and validate."""
        raw = f.req(w, "missing", list)
        return cls(
            msg_id=f.req(w, "id", str),
            device_id=f.req(w, "device_id", str),
            ts_ms=f.req(w, "ts", int),
            sha256=f.req(w, "sha256", str),
            missing=tuple(f.int_pair(r, "missing range") for r in raw),
        )


Event = DeliveryEvent | ContentRequest | Ack | LiveEvent


def event_from_wire(d: object) -> Event:
    """Parse any message of a device's events topic."""
    w = f.versioned(d, "event")
    kind = f.req(w, "kind", str)
    parser = _EVENT_PARSERS.get(kind)
    if parser is None:
        raise ProtocolError(f"unknown event kind {kind!r}")
    return parser(w)


_EVENT_PARSERS: dict[str, Callable[[Wire], Event]] = {
    DeliveryEvent.kind: DeliveryEvent.from_wire,
    ContentRequest.kind: ContentRequest.from_wire,
    Ack.kind: Ack.from_wire,
    LiveEvent.kind: LiveEvent.from_wire,
}
COMMAND_KINDS = frozenset(_BODIES)
"""Command kinds a device's own command topic may carry."""
EVENT_KINDS = frozenset(_EVENT_PARSERS)
"""Message kinds a device's events topic may carry."""


@dataclass(frozen=True, slots=True)
class Link:
    """A device's uplink quality."""

    network: str = "wired"
    rssi_dbm: int | None = None

    def __post_init__(self) -> None:
        f.choice(self.network, NETWORKS, "link.network")
        if self.rssi_dbm is not None:
            f.check_range(self.rssi_dbm, MIN_RSSI_DBM, MAX_RSSI_DBM, "link.rssi_dbm")

    def to_wire(self) -> Wire:
        """Wire dict."""
        return {"network": self.network, "rssi_dbm": self.rssi_dbm}

    @classmethod
    def from_wire(cls, d: object) -> Link:
        """Parse and validate."""
        w = f.obj(d, "link")
        return cls(
            network=f.choice(w.get("network"), NETWORKS, "link.network"), rssi_dbm=f.opt(w, "rssi_dbm", int)
        )


NETWORKS = ("wired", "4g", "3g", "2g", "wifi")
POWER_SOURCES = ("mains", "battery", "solar")
AMPLIFIER_STATES = ("ok", "off", "fault")


@dataclass(frozen=True, slots=True)
class Power:
    """Where a device draws power from."""

    source: str = "mains"
    battery_pct: int | None = None

    def __post_init__(self) -> None:
        f.choice(self.source, POWER_SOURCES, "power.source")
        if self.battery_pct is not None:
            f.check_range(self.battery_pct, 0, MAX_PERCENT, "power.battery_pct")

    def to_wire(self) -> Wire:
        """Wire dict."""
        return {"source": self.source, "battery_pct": self.battery_pct}

    @classmethod
    def from_wire(cls, d: object) -> Power:
        """Parse and validate."""
        w = f.obj(d, "power")
        return cls(
            source=f.choice(w.get("source"), POWER_SOURCES, "power.source"),
            battery_pct=f.opt(w, "battery_pct", int),
        )


@dataclass(frozen=True, slots=True)
class Status:
    """A device's retained status; `online=False` is also its Last Will."""

    device_id: str
    online: bool
    ts_ms: int
    firmware: str = ""
    model: str = ""
    volume: int = 0
    playing: str | None = None
    uptime_s: int = 0
    link: Link = field(default_factory=Link)
    power: Power = field(default_factory=Power)
    amplifier: str = "ok"
    cached: tuple[str, ...] = ()
    cached_count: int = 0
    protocol: int = PROTOCOL_VERSION
    protocol_minor: int = 0
    """The minor revision the cluster speaks (§14); 0: not announced (a v1.0 or v1.1 cluster)."""
    temperature_c: float | None = None
    storage_free_mb: int | None = None
    clock_offset_ms: int | None = None
    rejected_commands: int = 0
    """Commands refused since start-up: unsigned, forged, untrusted key, replayed or expired."""
    features: tuple[str, ...] = ()
    """Optional protocol features the cluster supports (v1.2: `live`); absent on older clusters."""

    def __post_init__(self) -> None:
        check_id(self.device_id, "device id")
        f.check_range(self.rejected_commands, 0, MAX_COUNT, "rejected_commands")
        f.check_timestamp(self.ts_ms, "ts")
        f.check_range(self.volume, 0, MAX_PERCENT, "volume")
        f.check_range(self.uptime_s, 0, MAX_UPTIME_S, "uptime_s")
        f.check_range(self.cached_count, 0, MAX_COUNT, "cached_count")
        f.check_range(self.protocol, 1, MAX_PROTOCOL_REPORTED, "protocol")
        f.check_range(self.protocol_minor, 0, MAX_PROTOCOL_REPORTED, "protocol_minor")
        if self.playing is not None:
            f.check_token(self.playing, "playing")
        if self.storage_free_mb is not None:
            f.check_range(self.storage_free_mb, 0, MAX_STORAGE_FREE_MB, "storage_free_mb")
        if self.clock_offset_ms is not None:
            f.check_range(self.clock_offset_ms, -MAX_CLOCK_OFFSET_MS, MAX_CLOCK_OFFSET_MS, "clock_offset_ms")
        if self.temperature_c is not None:
            f.check_number(self.temperature_c, MIN_TEMPERATURE_C, MAX_TEMPERATURE_C, "temperature_c")
        f.check_text(self.firmware, "firmware")
        f.check_text(self.model, "model")
        f.choice(self.amplifier, AMPLIFIER_STATES, "amplifier")
        if len(self.cached) > MAX_CACHED_LISTED:
            raise ProtocolError(f"status lists at most {MAX_CACHED_LISTED} cached items")
        for h in self.cached:
            check_sha256(h)
        if len(self.features) > MAX_CACHED_LISTED:
            raise ProtocolError(f"status lists at most {MAX_CACHED_LISTED} features")
        for feature in self.features:
            f.check_token(feature, "feature")

    def to_wire(self) -> Wire:
        """Wire dict."""
        return {
            "v": PROTOCOL_VERSION,
            "device_id": self.device_id,
            "online": self.online,
            "ts": self.ts_ms,
            "protocol": self.protocol,
            **({"protocol_minor": self.protocol_minor} if self.protocol_minor else {}),
            "firmware": self.firmware,
            "model": self.model,
            "volume": self.volume,
            "playing": self.playing,
            "uptime_s": self.uptime_s,
            "link": self.link.to_wire(),
            "power": self.power.to_wire(),
            "amplifier": self.amplifier,
            "cached": list(self.cached),
            "cached_count": self.cached_count,
            "temperature_c": self.temperature_c,
            "storage_free_mb": self.storage_free_mb,
            "clock_offset_ms": self.clock_offset_ms,
            "rejected_commands": self.rejected_commands,
        } | ({"features": list(self.features)} if self.features else {})

    @classmethod
    def from_wire(cls, d: object) -> Status:
        """Parse and validate; an offline Last Will may omit everything but the identity."""
        w = f.versioned(d, "status")
        return cls(
            device_id=f.req(w, "device_id", str),
            online=f.req(w, "online", bool),
            ts_ms=f.opt(w, "ts", int) or 0,
            protocol=_default(f.opt(w, "protocol", int), PROTOCOL_VERSION),
            protocol_minor=f.opt(w, "protocol_minor", int) or 0,
            firmware=f.opt(w, "firmware", str) or "",
            model=f.opt(w, "model", str) or "",
            volume=f.opt(w, "volume", int) or 0,
            playing=f.opt(w, "playing", str),
            uptime_s=f.opt(w, "uptime_s", int) or 0,
            link=Link.from_wire(w["link"]) if "link" in w else Link(),
            power=Power.from_wire(w["power"]) if "power" in w else Power(),
            amplifier=f.opt(w, "amplifier", str) or "ok",
            cached=tuple(f.str_list(w.get("cached", []), "cached")),
            cached_count=f.opt(w, "cached_count", int) or 0,
            temperature_c=_number(w.get("temperature_c")),
            storage_free_mb=f.opt(w, "storage_free_mb", int),
            clock_offset_ms=f.opt(w, "clock_offset_ms", int),
            rejected_commands=f.opt(w, "rejected_commands", int) or 0,
            features=tuple(f.str_list(w.get("features", []), "features")),
        )


def _default(value: int | None, default: int) -> int:
    return default if value is None else value


def _number(value: object) -> float | None:
    if value is None:
        return None
    return f.check_number(value, MIN_TEMPERATURE_C, MAX_TEMPERATURE_C, "temperature_c")
