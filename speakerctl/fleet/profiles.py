"""Hardware profiles as the controller reads them: what each cluster model plays, powers and stores."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Final

from speakerctl.fleet.records import Network
from speakerctl.fleet.validate import (
    check_format,
    index,
    int_in,
    member,
    read_json,
    record,
    records,
    text,
    tokens,
    unique,
    valid_id,
    where,
)
from speakerctl.protocol import fields as f

MAX_AMPLIFIER_WATTS: Final = 10_000
MAX_STORAGE_MB: Final = 1_048_576
DATA_PACKAGE: Final = "devices"
"""The package whose data files (inventories/, profiles/) the fleet reads; found by name, never imported."""

_PROFILE_FIELDS = frozenset(
    {"id", "vendor", "description", "codecs", "amplifier_watts", "max_volume", "storage_mb", "networks"}
)
_PROFILES_FILE_FIELDS = frozenset({"format", "profiles"})


@dataclass(frozen=True, slots=True)
class HardwareProfile:
    """What a cluster model can do: codecs (preferred first), power, volume cap, storage, links."""

    id: str
    vendor: str
    description: str
    codecs: tuple[str, ...]
    amplifier_watts: int
    max_volume: int
    storage_mb: int
    networks: tuple[Network, ...]

    def __post_init__(self) -> None:
        valid_id(self.id, "id")
        object.__setattr__(self, "vendor", text(self.vendor, "vendor"))
        object.__setattr__(self, "description", text(self.description, "description"))
        object.__setattr__(self, "codecs", tokens(self.codecs, "codec"))
        int_in(self.amplifier_watts, 1, MAX_AMPLIFIER_WATTS, "amplifier_watts")
        int_in(self.max_volume, 1, 100, "max_volume")
        int_in(self.storage_mb, 1, MAX_STORAGE_MB, "storage_mb")
        networks = tuple(member(Network, n, "network") for n in unique(self.networks, "networks"))
        object.__setattr__(self, "networks", networks)

    def supports(self, codec: str) -> bool:
        """Whether this model decodes `codec`."""
        return codec in self.codecs

    def preferred_codec(self, offered: Iterable[str]) -> str | None:
        """The first codec of this model's preference order that is among `offered`."""
        available = set(offered)
        return next((c for c in self.codecs if c in available), None)


def load_profiles(path: str | Path | None = None) -> dict[str, HardwareProfile]:
    """The packaged hardware profiles by id, or those of the profiles file at `path`."""
    if path is None:
        resource: Traversable | Path = resources.files(DATA_PACKAGE) / "profiles" / "profiles.json"
        source = f"{DATA_PACKAGE}/profiles/profiles.json"
    else:
        resource, source = Path(path), str(path)
    return profiles_from_dict(read_json(resource, source), source=source)


def profiles_from_dict(d: object, *, source: str = "<profiles>") -> dict[str, HardwareProfile]:
    """Validate a decoded profiles file into profiles by id."""
    with where(source):
        w = record(d, _PROFILES_FILE_FIELDS, "profiles file")
        check_format(w["format"])
        return index(records(w, "profiles", "profile", _profile_from_wire), "profile")


def _profile_from_wire(d: object) -> HardwareProfile:
    """A hardware profile record."""
    w = record(d, _PROFILE_FIELDS, "profile")
    return HardwareProfile(
        id=w["id"],
        vendor=w["vendor"],
        description=w["description"],
        codecs=tuple(f.str_list(w["codecs"], "codecs")),
        amplifier_watts=w["amplifier_watts"],
        max_volume=w["max_volume"],
        storage_mb=w["storage_mb"],
        networks=tuple(member(Network, n, "network") for n in f.str_list(w["networks"], "networks")),
    )
