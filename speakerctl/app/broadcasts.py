"""Broadcasts: send a bulletin now and follow it; resume the ones a crashed controller left running."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime

from speakerctl.app import audit, names, policy, records, views
from speakerctl.app import confirmation as confirming
from speakerctl.app.access import Actor
from speakerctl.app.context import AppContext
from speakerctl.app.runtime import running_controller
from speakerctl.controller.resume import resume_broadcasts
from speakerctl.controller.service import BroadcastRequest, BroadcastResult, Controller, new_broadcast_id
from speakerctl.errors import UsageError
from speakerctl.i18n import _
from speakerctl.protocol import Priority
from speakerctl.protocol.lifecycle import FINAL
from speakerctl.store import ItemKind, NewItem, Store

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


def hold(
    ctx: AppContext,
    bulletin_id: int,
    targets: Sequence[str],
    priority: str = "normal",
    *,
    actor: Actor,
    emergency: bool = False,
) -> None:
    """Queue the request for its approvers (AwaitsApproval) if `actor` may not air it now; else nothing.

    Called before anything shows the broadcast as airing (a progress bar), so a held request never looks
    as if it were on air. NotAllowed if the actor may not broadcast there at all.
    """
    req = request(ctx, bulletin_id, targets, priority, emergency=emergency)
    _route(ctx.store(), actor, req, ctx.clock.now())


def _route(store: Store, actor: Actor, req: BroadcastRequest, now: datetime) -> policy.Routing:
    """The request's routing if it airs now; queued for approval (AwaitsApproval) if it is held."""
    asked = policy.Request(ItemKind.BROADCAST, req.bulletin_id, req.targets, req.priority)
    routing = policy.route(store, actor, asked, now)
    if not routing.direct:
        raise policy.awaiting(policy.queue_items(store, actor, routing.held))
    return routing


def confirmation(
    ctx: AppContext,
    bulletin_id: int,
    targets: Sequence[str],
    priority: str = "normal",
    *,
    actor: Actor,
    emergency: bool = False,
) -> confirming.Confirmation | None:
    """What `actor` must confirm before this broadcast airs (None: nothing, or it would wait for approval).

    NotAllowed first if the actor may not broadcast there at all.
    """
    req, store = request(ctx, bulletin_id, targets, priority, emergency=emergency), ctx.store()
    asked = policy.Request(ItemKind.BROADCAST, bulletin_id, req.targets, req.priority)
    if not policy.route(store, actor, asked, ctx.clock.now()).direct:
        return None
    return confirming.needed(store, req.targets, req.priority)


def new_id(ctx: AppContext) -> str:
    """A fresh broadcast id, for a caller that must know it before the broadcast starts (to stop it)."""
    return new_broadcast_id(ctx.clock.now())


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
    actor: Actor,
    emergency: bool = False,
    timeout_s: float | None = None,
    progress: Progress | None = None,
    confirmed: bool = False,
    broadcast_id: str = "",
) -> views.BroadcastResultView:
    """Broadcast a bulletin now and follow it to the end (every cluster final, or time out).

    What the actor may not air directly (their zone's policy, or lower zones that decide for themselves)
    is queued instead: AwaitsApproval names the items (see app/policy.py). What airs at once needs
    `confirmed` if it is an emergency or province-wide (the rule: `confirmation`), else NeedsConfirmation.
    """
    req = request(ctx, bulletin_id, targets, priority, emergency=emergency)
    store = ctx.store()
    req = replace(req, broadcast_id=broadcast_id, started_by=actor.name)
    routing = _route(store, actor, req, ctx.clock.now())
    confirming.require(confirming.needed(store, req.targets, req.priority), confirmed)
    return await send(
        ctx, req, actor=actor, store=store, notes=routing.notes, timeout_s=timeout_s, progress=progress
    )


async def send(
    ctx: AppContext,
    req: BroadcastRequest,
    *,
    actor: Actor,
    store: Store | None = None,
    notes: Sequence[NewItem] = (),
    timeout_s: float | None = None,
    progress: Progress | None = None,
    controller: Controller | None = None,
) -> views.BroadcastResultView:
    """Air a request already authorized (and approved, if it had to be); audited with the actor.

    `approved_by` is the request's, else the actor's (a sender who needed no approval let it air);
    `started_by` likewise (an approved item's submitter started it). `controller`: a running one to air
    it through (`serve`: one MQTT session; its own timeout applies), else one is started for it.
    """
    store = controller.store if controller else (store or ctx.store())
    req = begun(store, actor, req, notes, ctx.clock.now())
    if controller is not None:
        return result(store, await controller.broadcast(req, progress))
    async with running_controller(with_timeout(ctx, timeout_s), store) as running:
        return result(store, await running.broadcast(req, progress))


async def resume(ctx: AppContext) -> list[views.BroadcastResultView]:
    """Re-send every broadcast the store shows running, and follow each to the end."""
    async with running_controller(ctx) as controller:
        return [result(controller.store, r) for r in await resume_broadcasts(controller)]


def routed(
    controller: Controller,
    actor: Actor,
    bulletin_id: int,
    targets: Sequence[str],
    priority: str,
    *,
    confirmed: bool = False,
) -> BroadcastRequest:
    """For a running controller (the console): confirmed, routed by the zone's policy (AwaitsApproval
    if held), recorded in the audit log, with its id chosen now; `follow` then airs it."""
    store, now = controller.store, controller.clock.now()
    level = Priority.EMERGENCY if priority == "emergency" else parse_priority(priority)
    volume = controller.settings.emergency_volume if level is Priority.EMERGENCY else None
    req = BroadcastRequest(bulletin_id, tuple(names.target_ids(store, targets)), level, volume=volume)
    routing = _route(store, actor, req, now)
    # What airs now is confirmed; a request held for approval is confirmed by what its approver does.
    confirming.require(confirming.needed(store, req.targets, level), confirmed)
    return begun(store, actor, req, routing.notes, now)


def begun(
    store: Store, actor: Actor, req: BroadcastRequest, notes: Sequence[NewItem], now: datetime
) -> BroadcastRequest:
    """The request with its id and people, audited, its notes for lower zones queued."""
    req = replace(
        req,
        broadcast_id=req.broadcast_id or new_broadcast_id(now),
        approved_by=req.approved_by or actor.name,
        started_by=req.started_by or actor.name,
    )
    detail = f"bulletin {req.bulletin_id} to {', '.join(req.targets)}, {req.priority.wire}"
    audit.record(store, actor, "broadcast", now, subject=f"broadcast {req.broadcast_id}", detail=detail)
    if notes:
        policy.queue_items(store, actor, [replace(n, result=req.broadcast_id) for n in notes])
    return req


async def follow(controller: Controller, req: BroadcastRequest) -> views.BroadcastResultView:
    """Air a routed request through the running controller and follow it to the end."""
    return result(controller.store, await controller.broadcast(req))


def result(store: Store, r: BroadcastResult) -> views.BroadcastResultView:
    """What a broadcast reached, with who stopped it (the store records a stop made from anywhere)."""
    return records.broadcast_result(r, store.broadcasts.get(r.broadcast_id).stopped_by or None)
