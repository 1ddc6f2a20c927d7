"""What every CLI command shares: settings, consoles, exit codes, running async code."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable, Coroutine, Sequence
from enum import IntEnum
from typing import Any, TypeVar

from rich.console import Console

from speakerctl.app import accounts, runtime
from speakerctl.app.access import Actor
from speakerctl.app.context import AppContext
from speakerctl.app.views import View, dump_all
from speakerctl.clock import Clock
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
    FORBIDDEN = 9
    UNCONFIRMED = 10
    AWAITS_APPROVAL = 11
    """Nothing aired or was scheduled yet: the request waits for an approver (it is not lost)."""
    INTERRUPTED = 130


class _State:
    settings: Settings = Settings()
    clock: Clock | None = None
    """None: the composition root's system clock; tests pin one."""
    web: Callable[[str], runtime.FrontEndFactory] | None = None
    """The web front end for `serve --http HOST:PORT`, handed in by speakerctl.main."""
    openapi: Callable[[], str] | None = None
    """The HTTP API's OpenAPI document as text, handed in by speakerctl.main (cli does not import web)."""

    def context(self) -> AppContext:
        """The application context for this command."""
        return runtime.context(self.settings, self.clock)


state = _State()


def current_actor() -> Actor:
    """Who the CLI acts as: the signed-in user, else the local administrator of the data directory.

    Without a session file the CLI is that administrator: reading the data directory already gives the
    command-signing key, so a password there would protect nothing (see app/accounts.py).
    NotSignedIn (exit 8, hint `speakerctl login NAME`) when the saved session has expired.
    """
    return accounts.cli_actor(state.context())


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion on a fresh event loop."""
    return asyncio.run(coro)


def print_json(data: View | Sequence[View]) -> None:
    """A record (or records) as its view serialises it, on stdout, UTF-8 kept as is."""
    dumped = data.dump() if isinstance(data, View) else dump_all(data)
    sys.stdout.write(json.dumps(dumped, ensure_ascii=False, indent=2) + "\n")
