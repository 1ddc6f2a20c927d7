"""Stops: one broadcast everywhere it is still to air, or whatever is on air in a zone now.

A stop is signed and sent to the clusters (protocol §4.2), recorded at once (the clusters' open
deliveries `stopped`, by whom, and for a whole stop the broadcast `stopped`), then the clusters'
answers are awaited for `wait_s` seconds: each one that reports the stop counts as confirmed, and a
silent one stays `stopped` with a detail saying it has not confirmed. Every stop is in the audit log.

`stop_zone` stops only the clusters of the zone: a broadcast that also covers other zones keeps
playing there (the stop goes to the zone's command topic), and it ends `stopped` as a whole only when
the zone held every cluster still to air it. Airings pushed ahead whose start is still to come are not
"on air": pause their schedule instead. Works for any running broadcast, whichever process sent it: it
needs only the store and a link.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from speakerctl.app import audit, names, policy, views
from speakerctl.app.access import Action, Actor, authorize
from speakerctl.app.context import AppContext
from speakerctl.app.runtime import running_controller
from speakerctl.controller.service import Controller
from speakerctl.controller.tracker import Tracker
from speakerctl.errors import UsageError
from speakerctl.fleet import ZoneTree
from speakerctl.i18n import _
from speakerctl.protocol.lifecycle import FINAL, STOPPED
from speakerctl.store import BroadcastInfo, BroadcastState, StopOrder, Store

DEFAULT_WAIT_S = 10.0
"""How long a stop waits for the clusters to confirm it."""


@dataclass(frozen=True, slots=True)
class _Planned:
    """One broadcast to stop, where to send the stop, and the order to record."""

    info: BroadcastInfo
    where: tuple[str, ...]
    order: StopOrder


async def stop(
    ctx: AppContext,
    actor: Actor,
    broadcast_id: str,
    *,
    wait_s: float = DEFAULT_WAIT_S,
    controller: Controller | None = None,
) -> views.StopView:
    """Stop a running broadcast on every cluster still to air it (NotAllowed outside the actor's zone)."""
    store = controller.store if controller else ctx.store(sync_inventory=False)
    planned = await asyncio.to_thread(_plan_broadcast, store, actor, broadcast_id, ctx.clock.now())
    async with _running(ctx, store, controller) as running:
        return await _execute(running, actor, planned, wait_s)


async def stop_zone(
    ctx: AppContext,
    actor: Actor,
    zone_ids: Sequence[str],
    *,
    wait_s: float = DEFAULT_WAIT_S,
    controller: Controller | None = None,
) -> list[views.StopView]:
    """Stop what is on air now in the zones (ids or names, and below), on their clusters only; [] if
    nothing is."""
    store = controller.store if controller else ctx.store(sync_inventory=False)
    plans = await asyncio.to_thread(_plan_zone, store, actor, zone_ids, ctx.clock.now())
    if not plans:
        return []
    async with _running(ctx, store, controller) as running:
        return list(await asyncio.gather(*(_execute(running, actor, p, wait_s) for p in plans)))


@contextlib.asynccontextmanager
async def _running(ctx: AppContext, store: Store, given: Controller | None) -> AsyncIterator[Controller]:
    if given is not None:  # `serve` (the web console) stops through its own running controller
        yield given
        return
    async with running_controller(ctx, store) as running:
        yield running


def _plan_broadcast(store: Store, actor: Actor, broadcast_id: str, now: datetime) -> _Planned:
    info = store.broadcasts.get(broadcast_id)
    tree = ZoneTree(store.zones.all())
    authorize(actor, Action.STOP, policy.zones_of(store, info.targets), tree)
    if info.state is not BroadcastState.RUNNING:
        raise UsageError(
            _("broadcast {id} has already ended ({state})").format(id=info.id, state=info.state.value),
            hint=_("see `speakerctl report {id}`").format(id=info.id),
        )
    open_ids = tuple(d.device_id for d in store.deliveries.of(broadcast_id) if d.state not in FINAL)
    if not open_ids:
        raise UsageError(
            _("nothing left to stop: every cluster has ended broadcast {id}").format(id=info.id),
            hint=_("see `speakerctl report {id}`").format(id=info.id),
        )
    return _Planned(info, (), _order(actor, open_ids, now, whole=True))


def _plan_zone(store: Store, actor: Actor, zones: Sequence[str], now: datetime) -> list[_Planned]:
    zone_ids = list(dict.fromkeys(names.zone_id(store, z) for z in zones))  # ids or names, as typed
    tree = ZoneTree(store.zones.all())
    authorize(actor, Action.STOP, zone_ids, tree)
    inside = set(store.devices.ids_in(zone_ids))
    plans = []
    for broadcast_id, device_ids in store.deliveries.open_on(sorted(inside)).items():
        info = store.broadcasts.get(broadcast_id)
        if info.start_at is not None and info.start_at > now:
            continue  # pushed ahead, not on air yet
        everywhere = {d.device_id for d in store.deliveries.of(broadcast_id) if d.state not in FINAL}
        order = _order(actor, tuple(device_ids), now, whole=everywhere <= inside)
        plans.append(_Planned(info, tuple(zone_ids), order))
    return plans


def _order(actor: Actor, device_ids: tuple[str, ...], now: datetime, *, whole: bool) -> StopOrder:
    detail = _("stopped by {user}").format(user=actor.name)
    return StopOrder(device_ids, actor.name, now, detail, whole)


async def _execute(running: Controller, actor: Actor, planned: _Planned, wait_s: float) -> views.StopView:
    """Send the stop, record it, wait for the clusters' answers, note the silent ones, audit it."""
    info, order = planned.info, planned.order
    waiter = Tracker(info.id, list(order.device_ids), set(), running.clock)
    running.ingestor.watch(waiter)  # before sending: no answer may slip past
    try:
        await running.stop(info.id, planned.where)
        stored = await asyncio.to_thread(running.store.broadcasts.stop, info.id, order)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(waiter.done.wait(), wait_s)
    finally:
        running.ingestor.unwatch(waiter)
    silent = waiter.open_devices()
    await asyncio.to_thread(_note_silent, running.store, actor, info.id, silent)
    view = _view(stored, planned, waiter, silent)
    await asyncio.to_thread(_audit, running, actor, view)
    return view


def _note_silent(store: Store, actor: Actor, broadcast_id: str, silent: list[str]) -> None:
    if silent:
        detail = _("stopped by {user}; the cluster has not confirmed").format(user=actor.name)
        store.deliveries.note_stopped(broadcast_id, silent, detail)


def _view(stored: BroadcastInfo, planned: _Planned, waiter: Tracker, silent: list[str]) -> views.StopView:
    order = planned.order
    return views.StopView(
        broadcast=stored.id,
        zones=list(planned.where),
        whole=order.whole,
        state=stored.state.value,
        clusters=len(order.device_ids),
        confirmed=waiter.stopped,
        ended_otherwise=sum(p.state in FINAL and p.state is not STOPPED for p in waiter.devices.values()),
        unconfirmed=silent,
        stopped_by=order.by,
        stopped_at=order.at,
    )


def _audit(running: Controller, actor: Actor, view: views.StopView) -> None:
    where = _("in {zones}").format(zones=", ".join(view.zones)) if view.zones else _("everywhere")
    detail = _("{where}: {n} clusters stopped, {c} confirmed").format(
        where=where, n=view.clusters, c=view.confirmed
    )
    outcome = "confirmed" if not view.unconfirmed else "unconfirmed"
    subject = f"broadcast {view.broadcast}"
    audit.record(
        running.store, actor, "stop", running.clock.now(), subject=subject, outcome=outcome, detail=detail
    )
