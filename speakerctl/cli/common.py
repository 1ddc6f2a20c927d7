"""What every CLI command shares: settings, consoles, exit codes, running async code."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Coroutine
from enum import IntEnum
from typing import Any, TypeVar

from rich.console import Console

from speakerctl.config import Settings

T = TypeVar("T")
console = Console()
console_err = Console(stderr=True)


class Exit(IntEnum):
    """Exit codes with a meaning scripts can rely on."""

    OK = 0
    FAILURE = 1
    USAGE = 2
    INCOMPLETE = 3
    CONFIG = 4
    NOT_FOUND = 5
    INPUT = 6
    LINK = 7
    AUTH = 8
    INTERRUPTED = 130


class _State:
    settings: Settings = Settings()


state = _State()


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion on a fresh event loop."""
    return asyncio.run(coro)


def print_json(data: object) -> None:
    """Machine-readable output on stdout, UTF-8 kept as is."""
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")
