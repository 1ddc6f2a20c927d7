"""Checks shared by the fleet's records and loaders: each returns the clean value or raises InventoryError."""

from __future__ import annotations

import json
import math
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from enum import StrEnum
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Final, Protocol, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from speakerctl.errors import InventoryError, ProtocolError
from speakerctl.protocol import fields as f
from speakerctl.protocol.topics import check_id

FORMAT: Final = 1
"""The inventory and profile file format the fleet reads."""


class HasId(Protocol):
    """A record with an id (zone, device, profile)."""

    @property
    def id(self) -> str: ...


E = TypeVar("E", bound=StrEnum)
R = TypeVar("R", bound=HasId)
T = TypeVar("T")


@contextmanager
def where(place: str) -> Iterator[None]:
    """Prefix any InventoryError or ProtocolError raised inside with `place`."""
    try:
        yield
    except (InventoryError, ProtocolError) as exc:
        raise InventoryError(f"{place}: {exc}") from exc


def valid_id(value: str, what: str) -> str:
    """`value` if it is a valid id, with the protocol's ProtocolError translated."""
    try:
        return check_id(value, what)
    except ProtocolError as exc:
        raise InventoryError(str(exc)) from exc


def text(value: str, what: str) -> str:
    """Non-empty bounded text, NFC-normalised so Vietnamese names compare equal."""
    try:
        f.check_text(value, what)
    except ProtocolError as exc:
        raise InventoryError(str(exc)) from exc
    if not value.strip():
        raise InventoryError(f"{what} must not be empty")
    return unicodedata.normalize("NFC", value)


def member(cls: type[E], value: object, what: str) -> E:
    """The member of `cls` whose value is `value`."""
    for m in cls:
        if m.value == value:
            return m
    allowed = ", ".join(m.value for m in cls)
    raise InventoryError(f"{what} must be one of {allowed}, got {value!r}")


def int_in(value: int, lo: int, hi: int, what: str) -> int:
    """An integer within [lo, hi]."""
    try:
        return f.check_range(value, lo, hi, what)
    except ProtocolError as exc:
        raise InventoryError(str(exc)) from exc


def degrees(value: float, limit: float, what: str) -> float:
    """A finite coordinate within [-limit, limit], as a float."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InventoryError(f"{what} must be a number, got {type(value).__name__}")
    if not math.isfinite(value) or not -limit <= value <= limit:
        raise InventoryError(f"{what} must be within -{limit:g}..{limit:g}, got {value!r}")
    return float(value)


def unique(values: Sequence[T], what: str) -> tuple[T, ...]:
    """`values` as a non-empty tuple without repeats."""
    if isinstance(values, str) or not isinstance(values, Sequence) or not values:
        raise InventoryError(f"{what} must be a non-empty list")
    repeated = sorted({str(v) for v in values if values.count(v) > 1})
    if repeated:
        raise InventoryError(f"{what} lists {', '.join(repeated)} more than once")
    return tuple(values)


def tokens(values: Sequence[str], what: str) -> tuple[str, ...]:
    """A non-empty tuple of distinct protocol tokens (codec names)."""
    distinct = unique(values, f"{what}s")
    try:
        return tuple(f.check_token(v, what) for v in distinct)
    except ProtocolError as exc:
        raise InventoryError(str(exc)) from exc


def timezone(name: str) -> str:
    """`name` if it is an IANA time zone known to this system."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise InventoryError(f"timezone {name!r} is not a known IANA time zone") from None
    return name


def index(records: Iterable[R], what: str) -> dict[str, R]:
    """Records by id; InventoryError on a repeated id."""
    found: dict[str, R] = {}
    for record in records:
        if record.id in found:
            raise InventoryError(f"{what} id {record.id!r} is used more than once")
        found[record.id] = record
    return found


# --- decoded files -----------------------------------------------------------------------


def read_json(resource: Traversable | Path, source: str) -> object:
    """The decoded JSON of a file; InventoryError if it cannot be read or parsed."""
    try:
        content = resource.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InventoryError(f"{source}: cannot read: {exc}") from exc
    try:
        return json.loads(content, object_pairs_hook=_no_repeated_keys)
    except json.JSONDecodeError as exc:
        raise InventoryError(
            f"{source}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from exc
    except InventoryError as exc:
        raise InventoryError(f"{source}: {exc}") from exc


def _no_repeated_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object, refusing a key given twice (json would keep the last silently)."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        repeated = sorted({k for k, _ in pairs if [p[0] for p in pairs].count(k) > 1})
        raise InventoryError(f"key {repeated[0]!r} appears twice in one JSON object")
    return obj


def check_format(value: object) -> None:
    """Only files of FORMAT are read."""
    if isinstance(value, bool) or value != FORMAT:
        raise InventoryError(f"format {value!r} is not supported (expected {FORMAT})")


def record(d: object, allowed: frozenset[str], what: str) -> dict[str, Any]:
    """`d` as a JSON object with exactly the fields `allowed`."""
    w = f.obj(d, what)
    unknown, missing = sorted(w.keys() - allowed), sorted(allowed - w.keys())
    if unknown:
        raise InventoryError(f"unknown field {unknown[0]!r} (expected {', '.join(sorted(allowed))})")
    if missing:
        raise InventoryError(f"missing field {missing[0]!r}")
    return w


def records(w: Mapping[str, Any], key: str, what: str, build: Callable[[object], T]) -> tuple[T, ...]:
    """The records of array `key`, each built inside a label naming it."""
    items = w[key]
    if not isinstance(items, list):
        raise InventoryError(f"{key!r} must be an array")
    built: list[T] = []
    for i, item in enumerate(items):
        with where(_label(key, what, i, item)):
            built.append(build(item))
    return tuple(built)


def _label(key: str, what: str, position: int, item: object) -> str:
    """How an error names a record: by its id if it has a usable one, else by position."""
    rid = item.get("id") if isinstance(item, dict) else None
    return f"{what} {rid!r}" if isinstance(rid, str) and rid else f"{key}[{position}]"
