"""After a controller crash: pick up every broadcast the store still shows running.

A broadcast still valid is sent again with the *same* command id (derived from its id and issue
time), so clusters that already have it drop the copy and the others act on it; its content is
uploaded and repaired for whoever still needs it, and it is followed until every delivery is final.
One past its expiry is closed: clusters that never reported are recorded unreached.
The original command's `start_at`, `volume` and `on_preempt` are not stored, so a resumed play
uses the defaults (start now, the cluster's own volume).
"""

from __future__ import annotations

import asyncio
import logging
import secrets

from speakerctl.clock import to_ms
from speakerctl.controller.planning import Plan, resolve_targets
from speakerctl.controller.resilience import play_command_id
from speakerctl.controller.service import BroadcastResult, Controller, Progress
from speakerctl.controller.tracker import Tracker
from speakerctl.protocol import Command, ContentRef, DeliveryEvent, Play, Reason
from speakerctl.protocol.lifecycle import EXPIRED, NEEDS_REASON, REPORTED
from speakerctl.store import BroadcastInfo, BroadcastState, DeliveryInfo

log = logging.getLogger(__name__)


async def resume_broadcasts(
    controller: Controller, progress: Progress | None = None
) -> list[BroadcastResult]:
    """Resume or close every broadcast left running by a previous controller."""
    infos = await asyncio.to_thread(controller.store.broadcasts.latest, 1000)
    running = [b for b in infos if b.state is BroadcastState.RUNNING]
    return [await resume(controller, info, progress) for info in running]


async def resume(
    controller: Controller, info: BroadcastInfo, progress: Progress | None = None
) -> BroadcastResult:
    """Follow one interrupted broadcast to its end."""
    store = controller.store
    if controller.clock.now() >= info.expires_at:
        log.warning("broadcast %s expired while no controller ran: closing it", info.id)
        await asyncio.to_thread(store.deliveries.mark_unreached, info.id, Reason.EXPIRED.value)
        await asyncio.to_thread(
            store.broadcasts.finish, info.id, BroadcastState.INCOMPLETE, controller.clock.now()
        )
        counts = await asyncio.to_thread(store.deliveries.counts, info.id)
        return BroadcastResult(info.id, sum(counts.values()), counts, 0, 0)
    plan, deliveries = await asyncio.to_thread(_plan, controller, info)
    log.warning("resuming broadcast %s (%d clusters)", info.id, len(plan.device_ids))
    issued_ms = to_ms(info.issued_at)
    play = Play(info.id, plan.variants, title=plan.title[:200])
    command = Command(
        play_command_id(info.id, issued_ms), issued_ms, to_ms(info.expires_at), info.priority, play
    )
    tracker = Tracker(info.id, list(plan.device_ids), set(plan.online), controller.clock)
    for delivery in deliveries:
        _seed(tracker, delivery)
    return await controller.execute(plan, command, tracker, progress)


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


def _seed(tracker: Tracker, delivery: DeliveryInfo) -> None:
    """Tell the tracker what the store already knows of a device."""
    state = delivery.state
    if state not in REPORTED:
        return
    reason = Reason(delivery.reason) if delivery.reason in set(Reason) else None
    if state in NEEDS_REASON and reason is None:
        reason = Reason.EXPIRED if state is EXPIRED else Reason.PLAYBACK_ERROR
    event = DeliveryEvent(
        secrets.token_hex(8),
        delivery.device_id,
        to_ms(delivery.updated_at),
        tracker.broadcast_id,
        state,
        reason,
    )
    tracker.update(event)
