"""Small validators for wire dicts: each returns the clean value or raises ProtocolError."""

from __future__ import annotations

import re
from enum import Enum
from typing import Any, TypeVar

from speakerctl.errors import ProtocolError
from speakerctl.protocol.limits import MAX_ID_LENGTH, MAX_TEXT_LENGTH, MAX_TIMESTAMP_MS, PROTOCOL_VERSION
from speakerctl.protocol.topics import check_id

T = TypeVar("T")
E = TypeVar("E", bound=Enum)
TOKEN_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$"
"""Message ids, broadcast ids, codecs, features (at most MAX_ID_LENGTH characters)."""
_TOKEN = re.compile(TOKEN_PATTERN)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
"""C0 and C1 control characters (Unicode category Cc), NUL included: never in wire text."""


def obj(d: object, what: str) -> dict[str, Any]:
    """`d` as a JSON object."""
    if not isinstance(d, dict):
        raise ProtocolError(f"{what} must be a JSON object")
    return d


def versioned(d: object, what: str) -> dict[str, Any]:
    """`d` as a JSON object of this protocol version."""
    w = obj(d, what)
    version = w.get("v")
    if type(version) is not int or version != PROTOCOL_VERSION:
        raise ProtocolError(f"{what} has protocol version {version!r}, expected {PROTOCOL_VERSION}")
    return w


def _typed(value: object, typ: type[T], what: str) -> T:
    if type(value) is typ:  # the common case, checked first: every status passes here ~15 times
        return value
    # bool is an int in Python; JSON keeps them apart, and so do we.
    if isinstance(value, bool) and typ is not bool:
        raise ProtocolError(f"{what} must be {typ.__name__}, got a boolean")
    if not isinstance(value, typ):
        raise ProtocolError(f"{what} must be {typ.__name__}, got {type(value).__name__}")
    return value


def req(w: dict[str, Any], key: str, typ: type[T]) -> T:
    """A required field of a given JSON type."""
    if key not in w:
        raise ProtocolError(f"missing field {key!r}")
    return _typed(w[key], typ, key)


def opt(w: dict[str, Any], key: str, typ: type[T]) -> T | None:
    """An optional field: absent or null gives None."""
    value = w.get(key)
    return None if value is None else _typed(value, typ, key)


def enum(cls: type[E], value: object, what: str) -> E:
    """An enum member from its value."""
    try:
        return cls(value)
    except ValueError:
        raise ProtocolError(f"unknown {what} {value!r}") from None


def choice(value: object, allowed: tuple[str, ...], what: str) -> str:
    """One of a fixed set of strings."""
    if value not in allowed:
        raise ProtocolError(f"{what} must be one of {', '.join(allowed)}, got {value!r}")
    return str(value)


def check_range(value: int, lo: int, hi: int, what: str) -> int:
    """An integer within [lo, hi]."""
    if type(value) is int and lo <= value <= hi:  # the common case first (bool is not exactly int)
        return value
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ProtocolError(f"{what} must be an integer in {lo}..{hi}, got {value!r}")
    return value


def check_token(value: str, what: str) -> str:
    """A short ASCII identifier (message ids, broadcast ids, codecs)."""
    if not isinstance(value, str) or len(value) > MAX_ID_LENGTH or not _TOKEN.fullmatch(value):
        raise ProtocolError(f"{what} must be 1..{MAX_ID_LENGTH} of A-Z a-z 0-9 _ . : -, got {value!r}")
    return value


def check_text(value: str, what: str) -> str:
    """Free UTF-8 text of bounded length, without control characters."""
    if not isinstance(value, str) or len(value) > MAX_TEXT_LENGTH:
        raise ProtocolError(f"{what} must be text of at most {MAX_TEXT_LENGTH} characters")
    if _CONTROL.search(value):
        raise ProtocolError(f"{what} must not hold control characters (NUL, newline, escape, ...)")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        # JSON's \ud800 escapes decode to lone surrogates, which no UTF-8 encoder accepts.
        raise ProtocolError(f"{what} is not valid Unicode text") from None
    return value


def wire_text(value: str) -> str:
    """`value` made fit for a text field: control characters become spaces, cut to the length limit."""
    return _CONTROL.sub(" ", value)[:MAX_TEXT_LENGTH].encode("utf-8", "replace").decode("utf-8")


def check_timestamp(value: int, what: str) -> int:
    """Milliseconds since the epoch up to MAX_TIMESTAMP_MS (year 2200)."""
    return check_range(value, 0, MAX_TIMESTAMP_MS, what)


def check_number(value: object, lo: float, hi: float, what: str) -> float:
    """A finite JSON number (integer or fraction) within [lo, hi], as a float."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
        raise ProtocolError(f"{what} must be a number in {lo}..{hi}, got {value!r}")
    return float(value)


def int_pair(value: object, what: str) -> tuple[int, int]:
    """A two-integer JSON array."""
    if not isinstance(value, list) or len(value) != 2:
        raise ProtocolError(f"{what} must be [first, last]")
    return (_typed(value[0], int, what), _typed(value[1], int, what))


def str_list(value: object, what: str) -> list[str]:
    """A JSON array of strings."""
    if not isinstance(value, list):
        raise ProtocolError(f"{what} must be an array")
    return [_typed(v, str, what) for v in value]


def check_event_head(msg_id: str, device_id: str, ts_ms: int) -> None:
    """Validate what every device event carries: its message id, its device and its time stamp."""
    check_token(msg_id, "id")
    check_id(device_id, "device id")
    check_timestamp(ts_ms, "ts")


def event_head(kind: str, msg_id: str, device_id: str, ts_ms: int) -> dict[str, Any]:
    """The wire fields every device event starts with."""
    return {"v": PROTOCOL_VERSION, "kind": kind, "id": msg_id, "device_id": device_id, "ts": ts_ms}
