"""A test hook for fault tests: stop a controller process at a named phase, so a test can kill it there.

With `SPEAKERCTL_TEST_PAUSE_AT=<phase>` in its environment, a controller that reaches `<phase>` prints
`paused at <phase>` on stdout and waits until it is killed. Phases: `before-publish` (the broadcast is
planned and stored, no command sent) and `mid-publish` (the play command is on its first topic only).
Unset, as in production, the hook does nothing.
"""

from __future__ import annotations

import asyncio
import os

PAUSE_AT = "SPEAKERCTL_TEST_PAUSE_AT"


async def pause_at(phase: str) -> None:
    """Wait for ever at `phase` when the environment asks for it."""
    if os.environ.get(PAUSE_AT) == phase:
        print(f"paused at {phase}", flush=True)
        await asyncio.Event().wait()
