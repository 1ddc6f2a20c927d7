"""Remaps: an old-zone → new-zone mapping file and the pure plan of applying it to a placed fleet.

A mapping names the new zones and, for each old zone, the new zone its clusters move to, with the
sources that say so; an old zone whose successor the sources do not settle is marked `undetermined`
with a reason, and its clusters stay where they are. `plan_remap` works out, from the current tree and
where each cluster hangs: the zones to add, the clusters that move, the old zones left empty (retired,
kept for history) and how a target list (a schedule's) is rewritten. It does no I/O beyond reading
the mapping file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Final

from speakerctl.errors import InventoryError
from speakerctl.fleet.profiles import DATA_PACKAGE
from speakerctl.fleet.validate import check_format, index, read_json, record, records, text, valid_id, where
from speakerctl.fleet.zonetree import Zone, ZoneTree
from speakerctl.i18n import _

DEFAULT_REMAP: Final = "soc_trang_to_can_tho_2025"
_BARE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_FIELDS = frozenset({"format", "name", "effective", "from_inventory", "to_inventory", "notes", "sources"})
_MOVE_FIELDS = frozenset({"from", "to", "sources", "item", "note", "undetermined", "reason"})


@dataclass(frozen=True, slots=True)
class Move:
    """Old zone → new zone; `target` None when the sources do not settle it (then `reason` says why)."""

    source: str
    target: str | None
    sources: tuple[str, ...] = ()
    reason: str = ""

    def __post_init__(self) -> None:
        valid_id(self.source, "from")
        if self.target is None and not self.reason:
            raise InventoryError(f"move of {self.source!r}: an undetermined move needs a reason")
        if self.target is not None:
            valid_id(self.target, "to")


@dataclass(frozen=True, slots=True)
class RemapMapping:
    """A mapping file: its name, the new zones and the moves, in file order."""

    name: str
    zones: tuple[Zone, ...]
    moves: tuple[Move, ...]

    def __post_init__(self) -> None:
        index(self.zones, "zone")
        index([_Keyed(m.source) for m in self.moves], "move source")

    @property
    def undetermined(self) -> tuple[Move, ...]:
        """The moves the sources do not settle."""
        return tuple(m for m in self.moves if m.target is None)


@dataclass(frozen=True, slots=True)
class _Keyed:
    id: str


@dataclass(frozen=True, slots=True)
class RemapPlan:
    """What applying a mapping changes; `chains` is each moved cluster's new zone chain, root first."""

    mapping: str
    added: tuple[Zone, ...]
    moved: dict[str, tuple[str, str]]
    retired: tuple[str, ...]
    chains: dict[str, tuple[str, ...]]
    kept: dict[str, str] = field(default_factory=dict)
    """Clusters left in an undetermined zone: device id → that zone (the mapping says why)."""
    replacements: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Each retired zone → the new zones that now hold its clusters."""

    def retarget(self, targets: Sequence[str]) -> tuple[str, ...]:
        """`targets` with each retired zone replaced by its successors (devices and live zones kept)."""
        out: list[str] = []
        for target in targets:
            out.extend(self.replacements.get(target, (target,)))
        return tuple(dict.fromkeys(out))

    @property
    def empty(self) -> bool:
        """Whether applying it would change nothing."""
        return not (self.added or self.moved or self.retired)


def available_remaps() -> tuple[str, ...]:
    """Names of the packaged mapping files."""
    folder = resources.files(DATA_PACKAGE) / "remaps"
    return tuple(sorted(p.name.removesuffix(".json") for p in folder.iterdir() if p.name.endswith(".json")))


def load_mapping(name_or_path: str | Path = DEFAULT_REMAP) -> RemapMapping:
    """A packaged mapping by bare name, or the mapping file at a path; InventoryError if invalid."""
    if isinstance(name_or_path, str) and _BARE_NAME.match(name_or_path):
        resource: Traversable | Path = resources.files(DATA_PACKAGE) / "remaps" / f"{name_or_path}.json"
        if not resource.is_file():
            known = ", ".join(available_remaps()) or "none"
            raise InventoryError(
                _("no packaged mapping {name} (available: {known})").format(name=name_or_path, known=known)
            )
        source = f"{DATA_PACKAGE}/remaps/{name_or_path}.json"
    else:
        resource, source = Path(name_or_path), str(name_or_path)
    return mapping_from_dict(read_json(resource, source), source=source)


def mapping_from_dict(d: object, *, source: str = "<mapping>") -> RemapMapping:
    """Validate a decoded mapping file: every move's sources are cited, every target is a zone of it."""
    with where(source):
        w = record(d, _FIELDS | {"zones", "moves"}, "mapping")
        check_format(w["format"])
        cited = _cited(w["sources"])
        zones = records(w, "zones", "zone", _zone)
        moves = records(w, "moves", "move", lambda m: _move(m, cited))
        mapping = RemapMapping(text(w["name"], "name"), zones, moves)
        _check_targets(mapping)
        return mapping


def _cited(sources: object) -> frozenset[str]:
    if not isinstance(sources, list) or not sources:
        raise InventoryError("'sources' must be a non-empty array")
    return frozenset(valid_id(str(s.get("id")), "source id") for s in sources if isinstance(s, dict))


def _zone(d: object) -> Zone:
    w = record(d, frozenset({"id", "name", "kind", "parent"}), "zone")
    return Zone(id=w["id"], name=w["name"], kind=w["kind"], parent=w["parent"])


def _move(d: object, cited: frozenset[str]) -> Move:
    w: dict[str, Any] = _loose_record(d)
    if w.get("undetermined") is True:
        return Move(w["from"], None, (), text(w.get("reason", ""), "reason"))
    named = tuple(w.get("sources", ()))
    if not named:
        raise InventoryError("a determined move must name its sources")
    unknown = sorted(set(named) - cited)
    if unknown:
        raise InventoryError(f"source {unknown[0]!r} is not in 'sources'")
    return Move(w["from"], w.get("to"), named)


def _loose_record(d: object) -> dict[str, Any]:
    if not isinstance(d, dict) or "from" not in d:
        raise InventoryError("a move must be an object with 'from'")
    unknown = sorted(d.keys() - _MOVE_FIELDS)
    if unknown:
        raise InventoryError(f"unknown field {unknown[0]!r}")
    return d


def _check_targets(mapping: RemapMapping) -> None:
    new = {z.id for z in mapping.zones}
    for move in mapping.moves:
        if move.target is not None and move.target not in new:
            raise InventoryError(
                f"move of {move.source!r}: target {move.target!r} is not a zone of the mapping"
            )
    for zone in mapping.zones:
        if zone.parent is not None and zone.parent not in new:
            raise InventoryError(f"zone {zone.id!r}: parent {zone.parent!r} is not a zone of the mapping")


def plan_remap(mapping: RemapMapping, zones: Iterable[Zone], placed: Mapping[str, str]) -> RemapPlan:
    """The plan for the live `zones` and the clusters `placed` (device id → zone id) on them."""
    old = ZoneTree(zones)
    known = [m for m in mapping.moves if m.source in old.zones]
    if not known:
        raise InventoryError(
            _("mapping {name} moves none of the zones in use (already applied, or another map?)").format(
                name=mapping.name
            )
        )
    added = tuple(z for z in mapping.zones if z.id not in old.zones)
    new = ZoneTree([*old.zones.values(), *added])
    target = {m.source: m.target for m in known if m.target is not None}
    moved = {d: (z, target[z]) for d, z in placed.items() if z in target and target[z] != z}
    kept = {d: z for d, z in placed.items() if z in old.zones and _undetermined(mapping, z)}
    after = {d: moved[d][1] if d in moved else z for d, z in placed.items()}
    retired = _retired(old, known, after, new)
    chains = {d: tuple(new.ancestors(to)) for d, (_, to) in moved.items()}
    replacements = {z: _successors(old, z, target) for z in retired}
    return RemapPlan(mapping.name, added, moved, retired, chains, kept, replacements)


def _undetermined(mapping: RemapMapping, zone_id: str) -> bool:
    return any(m.source == zone_id and m.target is None for m in mapping.moves)


def _retired(
    old: ZoneTree, known: Sequence[Move], after: Mapping[str, str], new: ZoneTree
) -> tuple[str, ...]:
    """Old zones (moved ones and their ancestors) that hold no cluster at any depth after the moves."""
    candidates: set[str] = set()
    for move in known:
        if move.target is not None:
            candidates.update(old.ancestors(move.source))
    occupied = {z for zone_id in after.values() for z in new.ancestors(zone_id)}
    targets = {m.target for m in known}
    return tuple(z for z in old.tree_order() if z in candidates - occupied - targets)


def _successors(old: ZoneTree, zone_id: str, target: Mapping[str, str | None]) -> tuple[str, ...]:
    """The zone's own target, else the targets of the zones below it, in tree order."""
    own = target.get(zone_id)
    if own is not None:
        return (own,)
    below = [target[z] for z in old.tree_order() if z in old.subtree([zone_id]) and target.get(z)]
    return tuple(dict.fromkeys(t for t in below if t is not None))
