"""Running a long-lived coroutine until SIGINT or SIGTERM, cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Coroutine
from typing import Any


async def until_signalled(coro: Coroutine[Any, Any, None]) -> None:
    """Run `coro`, cancelling it on SIGINT/SIGTERM so its cleanup (TaskGroups, exit stacks) runs."""
    task = asyncio.ensure_future(coro)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    try:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
