"""Translations of what users read: gettext catalogues (domain `speakerctl`), Vietnamese by default.

The CLI speaks Vietnamese when the locale or a setting says so (`LANG=vi_VN.UTF-8`, `SPEAKERCTL_LANG=vi`);
the web console is Vietnamese unless the user picks English.
Catalogues live in `speakerctl/locale/<lang>/LC_MESSAGES/speakerctl.po`, extracted and compiled with Babel.
Every string a user reads goes through `_()` (or `ngettext()` for counts).
"""

from __future__ import annotations

import gettext as _gettext
import os
from importlib import resources

DOMAIN = "speakerctl"
LANGUAGES = ("vi", "en")
_current: _gettext.NullTranslations = _gettext.NullTranslations()
_language = "en"


def _locale_dir() -> str:
    return str(resources.files("speakerctl") / "locale")


def choose(explicit: str | None = None, default: str = "en") -> str:
    """The language to use: an explicit setting, then SPEAKERCTL_LANG, then the POSIX locale."""
    for value in (explicit, os.environ.get("SPEAKERCTL_LANG"), *_posix_locale()):
        code = (value or "").split(".")[0].split("_")[0].lower()
        if code in LANGUAGES:
            return code
    return default


def _posix_locale() -> tuple[str | None, ...]:
    return tuple(os.environ.get(name) for name in ("LC_ALL", "LC_MESSAGES", "LANG"))


def set_language(code: str) -> None:
    """Switch every later `_()` to `code` ("vi" or "en")."""
    global _current, _language
    _current = _gettext.translation(DOMAIN, _locale_dir(), languages=[code], fallback=True)
    _language = code


def language() -> str:
    """The language in use."""
    return _language


def _(message: str) -> str:
    """`message` in the language in use."""
    return _current.gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    """The singular or plural form for `n`, in the language in use."""
    return _current.ngettext(singular, plural, n)


def translations(code: str) -> _gettext.NullTranslations:
    """The catalogue of one language, without switching the process's language (one per web request)."""
    return _gettext.translation(DOMAIN, _locale_dir(), languages=[code], fallback=True)
