"""What a bulletin is made of: a sequence of items, from the command line or a small TOML file.

Items: a recording (any audio file), speech (Vietnamese text, synthesised), the attention chime
(the project's own or a file) and silence. On the command line each item is one word:

    chime | chime:FILE | say:TEXT | text:FILE | silence:SECONDS | file:FILE | FILE

A TOML file says the same with a table per item, paths relative to the file:

    title = "Bản tin sáng"
    profile = "speech"          # or "music"
    gap_s = 0.6                 # silence between items
    voice = "vi-vn-x-south"     # for every `say` and `text` item that names none
    rate = 150
    [[item]]
    chime = true                # or a file: chime = "chuong.wav"
    [[item]]
    say = "Kính thưa bà con"
    [[item]]
    file = "phong-su.mp3"
    [[item]]
    text = "tin-van.txt"        # UTF-8 text, spoken
    [[item]]
    silence = 1.0
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from speakerctl.audio import tts
from speakerctl.audio.formats import DEFAULT_PROFILE, profile
from speakerctl.errors import AudioError
from speakerctl.files import display_name

DEFAULT_GAP_S = 0.6
MAX_SILENCE_S = 60.0
MAX_ITEMS = 50
_ITEM_KEYS = frozenset({"chime", "say", "text", "file", "silence"})
_SPEECH_KEYS = frozenset({"voice", "rate"})
_TOP_KEYS = frozenset({"title", "profile", "gap_s", "voice", "rate", "item"})


@dataclass(frozen=True, slots=True)
class Recording:
    """An audio file, processed like any import."""

    path: Path

    @property
    def name(self) -> str:
        """The file's name as text (see `files.display_name`)."""
        return display_name(self.path)


@dataclass(frozen=True, slots=True)
class Speech:
    """Vietnamese text to synthesise; `name` is what errors and the library call it."""

    text: str
    voice: tts.Voice = field(default_factory=tts.Voice)
    name: str = "tts"

    def __post_init__(self) -> None:
        tts.check_text(self.text, self.name)


@dataclass(frozen=True, slots=True)
class Chime:
    """The attention chime: the configured one when `path` is None."""

    path: Path | None = None


@dataclass(frozen=True, slots=True)
class Silence:
    """A pause of its own, on top of the gaps between items."""

    seconds: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.seconds) and 0 < self.seconds <= MAX_SILENCE_S):
            raise AudioError(f"silence must last 0–{MAX_SILENCE_S:g} s, not {self.seconds}")


Item = Recording | Speech | Chime | Silence


@dataclass(frozen=True, slots=True)
class Composition:
    """A checked sequence of items with the settings that apply to all of them."""

    items: tuple[Item, ...]
    title: str | None = None
    profile: str = DEFAULT_PROFILE
    gap_s: float = DEFAULT_GAP_S

    def __post_init__(self) -> None:
        if not any(isinstance(i, Recording | Speech | Chime) for i in self.items):
            raise AudioError("a bulletin needs at least one item that makes a sound")
        if len(self.items) > MAX_ITEMS:
            raise AudioError(f"a bulletin has at most {MAX_ITEMS} items, not {len(self.items)}")
        if not (math.isfinite(self.gap_s) and 0 <= self.gap_s <= MAX_SILENCE_S):
            raise AudioError(f"gap_s must be 0–{MAX_SILENCE_S:g} s, not {self.gap_s}")
        profile(self.profile)

    @property
    def source_name(self) -> str:
        """What the library records as the source: the first recording's or text's name."""
        for item in self.items:
            if isinstance(item, Recording):
                return item.name
            if isinstance(item, Speech):
                return item.name
        return "chime"


def with_chimes(items: list[Item], chime: bool) -> tuple[Item, ...]:
    """The items, between two chimes if asked."""
    return (Chime(), *items, Chime()) if chime else tuple(items)


def read_text(path: Path) -> str:
    """A UTF-8 text file to speak; AudioError naming it if it cannot be read."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise AudioError(f"cannot read {path.name!r}: no such file") from exc
    except UnicodeDecodeError as exc:
        raise AudioError(f"cannot read {path.name!r}: not UTF-8 text", hint="save it as UTF-8") from exc
    except OSError as exc:
        raise AudioError(f"cannot read {path.name!r}: {exc.strerror or exc}") from exc


def parse_item(spec: str, voice: tts.Voice = tts.STANDARD_VOICE, base: Path = Path()) -> Item:
    """One command-line item: chime, chime:FILE, say:TEXT, text:FILE, silence:S, file:FILE, FILE."""
    kind, sep, value = spec.partition(":")
    if spec == "chime":
        return Chime()
    if not sep or kind not in _ITEM_KEYS or len(kind) == 1:  # a bare path, or C:\… on Windows
        return Recording(base / spec)
    if not value:
        raise AudioError(f"item {spec!r} is missing its value after the colon")
    return _item(kind, value, voice, base)


def _item(kind: str, value: Any, voice: tts.Voice, base: Path) -> Item:
    """An item of a kind from its value (a string from the command line, anything from TOML)."""
    if kind == "chime":
        return Chime(None if value is True else base / _string(value, kind))
    if kind == "say":
        return Speech(_string(value, kind), voice, "tts")
    if kind == "text":
        path = base / _string(value, kind)
        return Speech(read_text(path), voice, display_name(path))
    if kind == "silence":
        return Silence(_seconds(value))
    return Recording(base / _string(value, kind))


def _string(value: Any, kind: str) -> str:
    """A non-empty string value."""
    if not isinstance(value, str) or not value:
        raise AudioError(f"{kind} must be a non-empty string, not {value!r}")
    return value


def _seconds(value: Any) -> float:
    """A number of seconds, from TOML or from text."""
    if isinstance(value, bool):
        raise AudioError(f"silence must be a number of seconds, not {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise AudioError(f"silence must be a number of seconds, not {value!r}") from None


def load_composition(path: Path) -> Composition:
    """A composition from a TOML file; AudioError naming the file and what to fix."""
    try:
        data = tomllib.loads(read_text(path))
    except tomllib.TOMLDecodeError as exc:
        raise AudioError(f"cannot read {path.name!r}: {exc}") from exc
    try:
        return _composition(data, path.parent)
    except AudioError as exc:
        raise AudioError(f"{path.name}: {exc}", hint=exc.hint) from exc


def _composition(data: dict[str, Any], base: Path) -> Composition:
    """A composition from decoded TOML."""
    _no_unknown(data, _TOP_KEYS, "the file")
    voice = _voice(data, tts.STANDARD_VOICE)
    items = data.get("item", [])
    if not isinstance(items, list) or not items:
        raise AudioError("there is no [[item]]")
    return Composition(
        items=tuple(_toml_item(i, entry, voice, base) for i, entry in enumerate(items, 1)),
        title=_optional_string(data.get("title"), "title"),
        profile=_string(data.get("profile", DEFAULT_PROFILE), "profile"),
        gap_s=_seconds(data.get("gap_s", DEFAULT_GAP_S)),
    )


def _toml_item(index: int, entry: Any, voice: tts.Voice, base: Path) -> Item:
    """One [[item]] table."""
    if not isinstance(entry, dict):
        raise AudioError(f"item {index} must be a table")
    kinds = sorted(_ITEM_KEYS & entry.keys())
    if len(kinds) != 1:
        raise AudioError(f"item {index} needs exactly one of {', '.join(sorted(_ITEM_KEYS))}")
    _no_unknown(entry, _ITEM_KEYS | _SPEECH_KEYS, f"item {index}")
    try:
        return _item(kinds[0], entry[kinds[0]], _voice(entry, voice), base)
    except AudioError as exc:
        raise AudioError(f"item {index}: {exc}", hint=exc.hint) from exc


def _voice(table: dict[str, Any], default: tts.Voice) -> tts.Voice:
    """The voice and rate a table sets, over the default."""
    name = table.get("voice", default.name)
    rate = table.get("rate", default.rate_wpm)
    if not isinstance(rate, int) or isinstance(rate, bool):
        raise AudioError(f"rate must be a whole number of words per minute, not {rate!r}")
    return tts.Voice(_string(name, "voice"), rate)


def _optional_string(value: Any, what: str) -> str | None:
    """A string or nothing."""
    return None if value is None else _string(value, what)


def _no_unknown(table: dict[str, Any], known: frozenset[str], where: str) -> None:
    """AudioError for a key nobody reads (usually a typo)."""
    unknown = sorted(table.keys() - known)
    if unknown:
        raise AudioError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(known))})")
