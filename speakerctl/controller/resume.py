"""After a controller crash or restart: pick up every broadcast the store still shows running.

A broadcast still valid is followed again with the *same* play command (its id derived from its id
and issue time; its `start_at`, `volume` and `on_preempt` as recorded), re-sent while some cluster
never answered and the play may not have been published in full, or while some has not ended it and
what it said may have gone unheard (the broadcast was sent by another process than this persistent
session): a cluster that already has it does not act on the copy but repeats its latest event for the
broadcast. Its content is uploaded and repaired for whoever still needs it (a device whose stored
state is `accepted` may wait for any variant), and it is followed until every delivery is final. One
past its expiry is closed: clusters that never reported are recorded unreached. An airing pushed
ahead (its start still in the future) is not interrupted: `serve` follows it, the one-shot `resume`
leaves it to `serve`.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace

from speakerctl.clock import to_ms
from speakerctl.controller.planning import Plan, resolve_targets
from speakerctl.controller.resilience import play_command_id
from speakerctl.controller.service import BroadcastResult, Controller, Progress
from speakerctl.controller.tracker import Tracker
from speakerctl.protocol import Command, ContentRef, Play, Reason
from speakerctl.protocol.lifecycle import FINAL, PENDING
from speakerctl.store import BroadcastInfo, BroadcastState, DeliveryInfo

log = logging.getLogger(__name__)


async def resume_broadcasts(
    controller: Controller,
    progress: Progress | None = None,
    *,
    owner: str | None = None,
    ahead: bool = False,
) -> list[BroadcastResult]:
    """Resume or close, concurrently, the broadcasts `unfinished` finds."""
    return await resume_all(controller, await unfinished(controller, owner=owner, ahead=ahead), progress)


async def unfinished(
    controller: Controller, *, owner: str | None = None, ahead: bool = False
) -> list[BroadcastInfo]:
    """Broadcasts left running (only `owner`'s if given; airings yet to start only if `ahead`).

    With several controllers, never one that a live controller other than `owner` follows.
    """
    store = controller.store
    infos = await asyncio.to_thread(store.broadcasts.latest, 1000)
    live = await asyncio.to_thread(store.leases.live_members) if store.shared else set()
    now = controller.clock.now()
    return [
        b
        for b in infos
        if b.state is BroadcastState.RUNNING
        and owner in (None, b.owner)
        and (b.owner == owner or b.owner not in live)
        and (ahead or b.start_at is None or b.start_at <= now)
    ]


async def resume_all(
    controller: Controller, infos: list[BroadcastInfo], progress: Progress | None = None
) -> list[BroadcastResult]:
    """Follow each of `infos` to its end, concurrently."""
    async with asyncio.TaskGroup() as tg:
        jobs = [tg.create_task(resume(controller, info, progress)) for info in infos]
    return [job.result() for job in jobs]


async def resume(
    controller: Controller, info: BroadcastInfo, progress: Progress | None = None
) -> BroadcastResult:
    """Follow one interrupted broadcast to its end."""
    store = controller.store
    now = controller.clock.now()
    if now >= info.expires_at:
        log.warning("broadcast %s expired while no controller ran: closing it", info.id)
        await asyncio.to_thread(store.deliveries.mark_unreached, info.id, Reason.EXPIRED.value)
        await asyncio.to_thread(store.broadcasts.finish, info.id, BroadcastState.INCOMPLETE, now)
        counts = await asyncio.to_thread(store.deliveries.counts, info.id)
        return BroadcastResult(info.id, sum(counts.values()), counts, 0, 0)
    plan, deliveries = await asyncio.to_thread(_plan, controller, info)
    if not _ask(controller, info, deliveries):
        plan = replace(plan, topics=())
    log.warning("resuming broadcast %s (%d clusters)", info.id, len(plan.device_ids))
    tracker = Tracker(info.id, list(plan.device_ids), set(plan.online), controller.clock)
    tracker.replay(deliveries)
    wait_s = max(0.0, (info.start_at - now).total_seconds()) if info.start_at else 0.0
    return await controller.execute(plan, _command(info, plan), tracker, progress, wait_s)


def _ask(controller: Controller, info: BroadcastInfo, deliveries: list[DeliveryInfo]) -> bool:
    """Whether to re-send the play: it may not have been published in full and someone never
    answered, or answers may have gone unheard."""
    # A play published in full is held by the broker for every cluster subscribed; one still pending
    # is away, or compact (v1.3) with the content cached, silent until it plays.
    if info.published_at is None and any(d.state is PENDING for d in deliveries):
        return True
    # The broker queued what clusters said to our own persistent session while we were down.
    heard = controller.session.persistent and info.owner == controller.session.client_id
    return not heard and any(d.state not in FINAL for d in deliveries)


def _command(info: BroadcastInfo, plan: Plan) -> Command:
    """The broadcast's play command exactly as first sent: same id, start, volume and policy."""
    issued_ms = to_ms(info.issued_at)
    start = to_ms(info.start_at) if info.start_at else None
    play = Play(info.id, plan.variants, start, info.volume, plan.wire_title, info.on_preempt)
    return Command(
        play_command_id(info.id, issued_ms), issued_ms, to_ms(info.expires_at), info.priority, play
    )


def _plan(controller: Controller, info: BroadcastInfo) -> tuple[Plan, list[DeliveryInfo]]:
    store = controller.store
    bulletin = store.bulletins.get(info.bulletin_id)
    variants = tuple(
        ContentRef(v.sha256, v.size, v.codec, v.duration_ms)
        for v in store.bulletins.variants(info.bulletin_id)
    )
    cmd_topics, _ = resolve_targets(store, info.targets)
    deliveries = store.deliveries.of(info.id)
    online = frozenset(d.id for d in store.devices.all(online=True))
    device_ids = tuple(d.device_id for d in deliveries)
    plan = Plan(
        info.id,
        bulletin.title,
        variants,
        device_ids,
        online,
        tuple(cmd_topics),
        bulletin.duration_ms,
        info.expires_at,
    )
    return plan, deliveries
