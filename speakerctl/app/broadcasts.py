"""Broadcasts: send a bulletin now and follow it; resume the ones a crashed controller left running."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace

from speakerctl.app import names, records, views
from speakerctl.app.context import AppContext
from speakerctl.app.runtime import running_controller
from speakerctl.controller.resume import resume_broadcasts
from speakerctl.controller.service import BroadcastRequest
from speakerctl.errors import UsageError
from speakerctl.i18n import _
from speakerctl.protocol import Priority
from speakerctl.protocol.lifecycle import FINAL

Progress = Callable[[Counter[str], int], None]
"""Called with the count per delivery state and the number of clusters targeted."""


def parse_priority(value: str) -> Priority:
    """A priority level from its name."""
    try:
        return Priority[value.upper()]
    except KeyError:
        raise UsageError(
            _("unknown priority {value!r}").format(value=value), hint=_("use normal, priority or emergency")
        ) from None


def request(
    ctx: AppContext, bulletin_id: int, targets: Sequence[str], priority: str, *, emergency: bool = False
) -> BroadcastRequest:
    """A broadcast request to the zones and clusters named; an emergency cuts in at the emergency volume."""
    level = Priority.EMERGENCY if emergency else parse_priority(priority)
    volume = ctx.settings.emergency_volume if level is Priority.EMERGENCY else None
    ids = names.target_ids(ctx.store(), targets)
    return BroadcastRequest(bulletin_id, tuple(ids), level, volume=volume)


def with_timeout(ctx: AppContext, timeout_s: float | None) -> AppContext:
    """The context with the seconds (beyond the bulletin's length) to wait for silent clusters."""
    return replace(ctx, settings=ctx.settings.with_overrides(broadcast_timeout_s=timeout_s))


def settled(counts: Counter[str]) -> int:
    """Clusters whose delivery reached a final state."""
    return sum(n for state, n in counts.items() if state in FINAL)


async def broadcast(
    ctx: AppContext,
    bulletin_id: int,
    targets: Sequence[str],
    priority: str = "normal",
    *,
    emergency: bool = False,
    timeout_s: float | None = None,
    progress: Progress | None = None,
) -> views.BroadcastResultView:
    """Broadcast a bulletin now and follow it to the end (every cluster final, or time out)."""
    req = request(ctx, bulletin_id, targets, priority, emergency=emergency)
    async with running_controller(with_timeout(ctx, timeout_s)) as controller:
        return records.broadcast_result(await controller.broadcast(req, progress))


async def resume(ctx: AppContext) -> list[views.BroadcastResultView]:
    """Re-send every broadcast the store shows running, and follow each to the end."""
    async with running_controller(ctx) as controller:
        return [records.broadcast_result(r) for r in await resume_broadcasts(controller)]
