"""What a cluster is told when it is installed: who it is, where it hangs, what it plays, how it connects.

The controller writes these records from its inventory; a cluster (or the simulator) reads its own and
never needs the inventory. Pure data: the file is a JSON object `{"format": 1, "clusters": [record...]}`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from speakerctl.errors import ProtocolError
from speakerctl.protocol import fields as f
from speakerctl.protocol.topics import check_id

FORMAT: Final = 1
NETWORKS: Final = ("4g", "3g", "wired")


@dataclass(frozen=True, slots=True)
class Provisioning:
    """One cluster's identity: its id, its zones from the root down, its model, codecs and link."""

    device_id: str
    zones: tuple[str, ...]
    model: str
    codecs: tuple[str, ...]
    network: str

    def __post_init__(self) -> None:
        check_id(self.device_id, "device id")
        if not self.zones:
            raise ProtocolError("zones must name at least the cluster's own zone")
        for zone in self.zones:
            check_id(zone, "zone id")
        check_id(self.model, "model")
        if not self.codecs:
            raise ProtocolError("codecs must name at least one codec")
        for codec in self.codecs:
            f.check_token(codec, "codec")
        f.choice(self.network, NETWORKS, "network")

    @property
    def zone(self) -> str:
        """The zone the cluster hangs on (the last of the chain)."""
        return self.zones[-1]

    def to_wire(self) -> dict[str, Any]:
        """The record as JSON-ready data."""
        return {
            "device_id": self.device_id,
            "zones": list(self.zones),
            "model": self.model,
            "codecs": list(self.codecs),
            "network": self.network,
        }

    @classmethod
    def from_wire(cls, d: object) -> Provisioning:
        """A record from decoded JSON, or ProtocolError."""
        w = f.obj(d, "provisioning record")
        return cls(
            device_id=f.req(w, "device_id", str),
            zones=tuple(f.str_list(w.get("zones"), "zones")),
            model=f.req(w, "model", str),
            codecs=tuple(f.str_list(w.get("codecs"), "codecs")),
            network=f.req(w, "network", str),
        )


def provisioning_to_wire(records: tuple[Provisioning, ...] | list[Provisioning]) -> dict[str, Any]:
    """A provisioning file's content."""
    return {"format": FORMAT, "clusters": [r.to_wire() for r in records]}


def provisioning_from_wire(d: object) -> tuple[Provisioning, ...]:
    """The records of a decoded provisioning file, or ProtocolError."""
    w = f.obj(d, "provisioning file")
    if w.get("format") != FORMAT:
        raise ProtocolError(f"provisioning format {w.get('format')!r} is not supported (expected {FORMAT})")
    clusters = w.get("clusters")
    if not isinstance(clusters, list):
        raise ProtocolError("'clusters' must be an array")
    return tuple(Provisioning.from_wire(c) for c in clusters)
