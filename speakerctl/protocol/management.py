"""Remote-management commands (volume, reboot, ping) and the acknowledgement a device sends for each."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from speakerctl.errors import ProtocolError
from speakerctl.protocol import fields as f
from speakerctl.protocol.limits import MAX_PERCENT, MAX_ZONE_CHAIN
from speakerctl.protocol.topics import check_id

Wire = dict[str, Any]


@dataclass(frozen=True, slots=True)
class SetVolume:
    """Set the cluster's default volume (0-100) for broadcasts that do not name one."""

    volume: int

    kind = "set_volume"

    def __post_init__(self) -> None:
        f.check_range(self.volume, 0, MAX_PERCENT, "volume")

    def to_wire(self) -> Wire:
        """Wire dict."""
        return {"volume": self.volume}

    @classmethod
    def from_wire(cls, w: Wire) -> SetVolume:
        """Parse and validate."""
        return cls(volume=f.req(w, "volume", int))


@dataclass(frozen=True, slots=True)
class Reboot:
    """Restart the cluster's receiver; it acknowledges first, then goes offline and comes back."""

    kind = "reboot"

    def to_wire(self) -> Wire:
        """Wire dict."""
        return {}

    @classmethod
    def from_wire(cls, w: Wire) -> Reboot:
        """Parse and validate."""
        return cls()


@dataclass(frozen=True, slots=True)
class Ping:
    """Ask for an immediate acknowledgement, to measure the round trip and the clock offset."""

    kind = "ping"

    def to_wire(self) -> Wire:
        """Wire dict."""
        return {}

    @classmethod
    def from_wire(cls, w: Wire) -> Ping:
        """Parse and validate."""
        return cls()


@dataclass(frozen=True, slots=True)
class Configure:
    """Listen on a new zone chain (root first, own zone last), kept across reboots (v1.2, §4.5)."""

    zones: tuple[str, ...]

    kind = "configure"

    def __post_init__(self) -> None:
        if not 0 < len(self.zones) <= MAX_ZONE_CHAIN:
            raise ProtocolError(f"a zone chain holds 1..{MAX_ZONE_CHAIN} zones, got {len(self.zones)}")
        if len(set(self.zones)) != len(self.zones):
            raise ProtocolError("a zone chain names each zone once")
        for zone in self.zones:
            check_id(zone, "zone id")

    def to_wire(self) -> Wire:
        """Wire dict."""
        return {"zones": list(self.zones)}

    @classmethod
    def from_wire(cls, w: Wire) -> Configure:
        """Parse and validate."""
        return cls(zones=tuple(f.str_list(f.req(w, "zones", list), "zones")))


@dataclass(frozen=True, slots=True)
class Ack:
    """A device's answer to a management command: done, or refused with a reason."""

    msg_id: str
    device_id: str
    ts_ms: int
    command_id: str
    ok: bool = True
    detail: str = ""

    kind = "ack"

    def __post_init__(self) -> None:
        f.check_event_head(self.msg_id, self.device_id, self.ts_ms)
        f.check_token(self.command_id, "command_id")
        f.check_text(self.detail, "detail")

    def to_wire(self) -> Wire:
        """Wire dict."""
        return {
            **f.event_head(self.kind, self.msg_id, self.device_id, self.ts_ms),
            "command_id": self.command_id,
            "ok": self.ok,
            "detail": self.detail,
        }

    @classmethod
    def from_wire(cls, w: Wire) -> Ack:
        """Parse and validate."""
        return cls(
            msg_id=f.req(w, "id", str),
            device_id=f.req(w, "device_id", str),
            ts_ms=f.req(w, "ts", int),
            command_id=f.req(w, "command_id", str),
            ok=f.req(w, "ok", bool),
            detail=f.opt(w, "detail", str) or "",
        )
