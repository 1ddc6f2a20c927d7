"""The `speakerctl` command line. Importing it picks the language first, so typer's help is built in it."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from speakerctl.config import language_setting
from speakerctl.i18n import choose, set_language


def option_value(argv: Sequence[str], name: str) -> str | None:
    """The value of `--name VALUE` or `--name=VALUE` in a command line, if present."""
    for i, arg in enumerate(argv):
        if arg == name and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(name + "="):
            return arg.partition("=")[2]
    return None


def startup_language(argv: Sequence[str]) -> str:
    """The language for help texts: --lang, SPEAKERCTL_LANG, the settings file's, the locale, English."""
    config = option_value(argv, "--config")
    return choose(option_value(argv, "--lang"), setting=language_setting(Path(config) if config else None))


set_language(startup_language(sys.argv[1:]))
