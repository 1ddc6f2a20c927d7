"""A CAP 1.2 alert as values: what `parse_alert` returns once the document passed the schema."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Status(StrEnum):
    """CAP `status`: only Actual airs; Exercise and Test go to the rehearsal path."""

    ACTUAL = "Actual"
    EXERCISE = "Exercise"
    SYSTEM = "System"
    TEST = "Test"
    DRAFT = "Draft"


class MsgType(StrEnum):
    """CAP `msgType`."""

    ALERT = "Alert"
    UPDATE = "Update"
    CANCEL = "Cancel"
    ACK = "Ack"
    ERROR = "Error"


@dataclass(frozen=True, slots=True, order=True)
class AlertKey:
    """What makes a CAP message unique (CAP 1.2 §3.2.1: sender, identifier, sent)."""

    sender: str
    identifier: str
    sent: datetime

    def __str__(self) -> str:
        return f"{self.sender},{self.identifier},{self.sent.isoformat()}"


Reference = AlertKey
"""A `references` entry names an earlier message by the same triple."""


@dataclass(frozen=True, slots=True)
class Circle:
    """A CAP circle: centre in WGS 84 degrees, radius in kilometres."""

    lat: float
    lon: float
    radius_km: float


@dataclass(frozen=True, slots=True)
class Area:
    """A CAP `area`: polygons (closed rings of (lat, lon)), circles and geocodes (valueName, value)."""

    description: str
    polygons: tuple[tuple[tuple[float, float], ...], ...] = ()
    circles: tuple[Circle, ...] = ()
    geocodes: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Info:
    """One CAP `info` block (one language)."""

    language: str
    event: str
    urgency: str
    severity: str
    certainty: str
    headline: str = ""
    description: str = ""
    instruction: str = ""
    expires: datetime | None = None
    parameters: tuple[tuple[str, str], ...] = ()
    areas: tuple[Area, ...] = ()

    def parameter(self, *names: str) -> str | None:
        """The first parameter whose name (case-insensitive) is one of `names`."""
        wanted = {n.casefold() for n in names}
        return next((v for k, v in self.parameters if k.casefold() in wanted), None)


@dataclass(frozen=True, slots=True)
class Alert:
    """A CAP 1.2 alert message."""

    key: AlertKey
    status: Status
    msg_type: MsgType
    scope: str
    references: tuple[Reference, ...] = ()
    infos: tuple[Info, ...] = ()

    def info(self, languages: tuple[str, ...] = ("vi", "vi-vn")) -> Info | None:
        """The Vietnamese block when there is one, else the first (CAP's default language is en-US)."""
        for info in self.infos:
            if info.language.casefold() in languages or info.language.casefold().startswith("vi-"):
                return info
        return self.infos[0] if self.infos else None

    @property
    def expires(self) -> datetime | None:
        """When the chosen block stops being in effect (None: CAP leaves it to the recipient)."""
        chosen = self.info()
        return chosen.expires if chosen else None
