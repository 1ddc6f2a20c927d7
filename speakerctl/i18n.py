"""Translations of what users read: gettext catalogues (domain `speakerctl`) compiled from `.po` by Babel.

The CLI speaks Vietnamese when a setting or the locale says so (`--lang vi`, `SPEAKERCTL_LANG=vi`,
`language = "vi"` in the settings file, `LANG=vi_VN.UTF-8`), English otherwise; the web console is
Vietnamese unless the user picks English. The catalogue is
`speakerctl/locale/<lang>/LC_MESSAGES/speakerctl.po`; it is compiled in memory on first use
(no `.mo` in git, so the two can never disagree).
Every string a user reads goes through `_()` (or `ngettext()` for counts); `N_()` marks a string for
extraction where it is translated later. `reading(code)` speaks another language in one asyncio task
(or thread) only, e.g. a web request's reader, while the process keeps its own (`set_language`).
"""

from __future__ import annotations

import contextlib
import gettext as _gettext
import io
import os
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from functools import cache
from importlib import resources

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

DOMAIN = "speakerctl"
LANGUAGES = ("vi", "en")
SOURCE_LANGUAGE = "en"
"""The language the msgids are written in: it needs no catalogue."""
_current: _gettext.NullTranslations = _gettext.NullTranslations()
_language = SOURCE_LANGUAGE
_reader: ContextVar[tuple[str, _gettext.NullTranslations] | None] = ContextVar(
    "speakerctl_reader", default=None
)
"""The language of the current task's reader, if it is not the process's (a context variable: each
asyncio task and each `to_thread` call sees its own, so concurrent requests never mix languages)."""


def locale_dir() -> str:
    """Where the catalogues live: `<dir>/<lang>/LC_MESSAGES/speakerctl.po`."""
    return str(resources.files("speakerctl") / "locale")


def catalogue_path(code: str) -> str:
    """The `.po` file of a language."""
    return os.path.join(locale_dir(), code, "LC_MESSAGES", f"{DOMAIN}.po")


def normalise(value: str | None) -> str | None:
    """The language code in a setting or a POSIX locale ("vi_VN.UTF-8" → "vi"); None if not ours."""
    code = (value or "").split(".")[0].split("@")[0].replace("-", "_").split("_")[0].lower()
    return code if code in LANGUAGES else None


def choose(explicit: str | None = None, default: str = "en", *, setting: str | None = None) -> str:
    """The language: explicit, then SPEAKERCTL_LANG, then the settings file's, then the POSIX locale."""
    env = os.environ.get("SPEAKERCTL_LANG")
    return _first((explicit, env, setting, *_posix_locale())) or default


def _first(values: Iterable[str | None]) -> str | None:
    return next((code for code in map(normalise, values) if code), None)


def _posix_locale() -> tuple[str | None, ...]:
    return tuple(os.environ.get(name) for name in ("LC_ALL", "LC_MESSAGES", "LANG"))


@cache
def translations(code: str) -> _gettext.NullTranslations:
    """The compiled catalogue of `code` (NullTranslations for English or a missing catalogue), cached."""
    path = catalogue_path(code)
    if code == SOURCE_LANGUAGE or not os.path.exists(path):
        return _gettext.NullTranslations()
    with open(path, "rb") as po:
        catalog = read_po(po, locale=code, domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)  # fuzzy entries are left out, as msgfmt does
    compiled.seek(0)
    return _gettext.GNUTranslations(compiled)


def set_language(code: str) -> None:
    """Switch every later `_()` to `code` ("vi" or "en")."""
    global _current, _language
    _current = translations(code)
    _language = code


@contextlib.contextmanager
def reading(code: str) -> Iterator[None]:
    """`_()` in `code` within this block, for this task (and what it starts) only; then as before."""
    token = _reader.set((code, translations(code)))
    try:
        yield
    finally:
        _reader.reset(token)


def language() -> str:
    """The language in use."""
    reader = _reader.get()
    return reader[0] if reader else _language


def _active() -> _gettext.NullTranslations:
    reader = _reader.get()
    return reader[1] if reader else _current


def _(message: str) -> str:
    """`message` in the language in use."""
    return _active().gettext(message)


def N_(message: str) -> str:
    """`message` unchanged, marked for extraction: translated later with `_()`."""
    return message


def ngettext(singular: str, plural: str, n: int) -> str:
    """The singular or plural form for `n`, in the language in use."""
    return _active().ngettext(singular, plural, n)
