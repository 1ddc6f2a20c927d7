"""The provincial source system and webhooks, as services: one sync, a status, and running them in `serve`.

The province's pushes reach the commune as any operator's would: a pushed bulletin is imported into the
library and submitted to the approval queue (Circular 39), a pushed schedule goes to the schedule book
through `schedules.add` (held for approval where the zone's policy says so); both act as the province's
own user, `province:<name>`, an operator of the configured zone, so the audit log names who sent them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from speakerctl.app import approvals, bulletins, schedules
from speakerctl.app.access import Actor, Role
from speakerctl.app.context import AppContext
from speakerctl.app.integration_views import OutboxChannelView, SyncView
from speakerctl.config import ProvinceSettings
from speakerctl.controller.service import Controller
from speakerctl.errors import AwaitsApproval, UsageError
from speakerctl.i18n import _
from speakerctl.integrations.http import HttpClient
from speakerctl.integrations.mapping import load_profile
from speakerctl.integrations.province import PRUNE_EVERY_S, Inbox, ProvinceConnector, PushedItem
from speakerctl.integrations.webhooks import WebhookSender
from speakerctl.protocol import Priority
from speakerctl.store import Store

log = logging.getLogger(__name__)


def actor_of(settings: ProvinceSettings) -> Actor:
    """The user a province acts as: an operator of its configured zone."""
    return Actor(f"province:{settings.name}", Role.OPERATOR, settings.zone)


class QueueInbox(Inbox):
    """Pushed bulletins to the approval queue, pushed schedules to the schedule book."""

    def __init__(self, ctx: AppContext, settings: ProvinceSettings) -> None:
        self.ctx, self.settings, self.actor = ctx, settings, actor_of(settings)

    async def take(self, item: PushedItem, audio: Path) -> str:
        """Import the audio, then queue the bulletin or add the schedule; what it became."""
        return await asyncio.to_thread(self._take, item, audio)

    def _take(self, item: PushedItem, audio: Path) -> str:
        if item.type not in ("bulletin", "schedule"):
            raise UsageError(
                _("unknown pushed type {type!r}").format(type=item.type), hint="bulletin, schedule"
            )
        priority = _priority(item.priority)
        imported = bulletins.import_file(self.ctx, audio, item.title or None, actor=self.actor)
        target = item.zone_id or self.settings.zone
        if item.type == "bulletin":
            at = schedules.parse_at(item.at, self.ctx.settings.timezone) if item.at else None
            held = approvals.submit(self.ctx, imported.id, [target], priority, actor=self.actor, at=at)
            return _("bulletin {id} queued for approval as item(s) {items}").format(
                id=imported.id, items=", ".join(str(i.id) for i in held)
            )
        return self._schedule(item, imported.id, target, priority)

    def _schedule(self, item: PushedItem, bulletin_id: int, target: str, priority: str) -> str:
        rule = schedules.build_rule(
            self.ctx.settings.timezone,
            at=item.at or None,
            daily=item.daily or None,
            days=item.days or None,
            valid_from=item.valid_from or None,
            valid_until=item.valid_until or None,
        )
        spec = schedules.ScheduleSpec(bulletin_id, [target], rule, priority, name=item.title[:100])
        try:
            added = schedules.add(self.ctx, spec, actor=self.actor, confirmed=True)
        except AwaitsApproval as held:
            items = ", ".join(str(i) for i in held.items)
            return _("schedule queued for approval as item(s) {items}").format(items=items)
        return _("schedule {id} added").format(id=added.schedule.id)


def _priority(level: int) -> str:
    """The priority name of a pushed level; emergencies are refused (they come as CAP alerts)."""
    try:
        found = Priority(level)
    except ValueError:
        raise UsageError(_("unknown priority level {level}").format(level=level), hint="1, 2 or 3") from None
    if found is Priority.EMERGENCY:
        raise UsageError(_("an emergency is not queued: the province sends it as a CAP alert"))
    return found.wire


def connector(
    ctx: AppContext, store: Store, settings: ProvinceSettings, http: HttpClient
) -> ProvinceConnector:
    """The connector of one configured province, with its mapping profile and the commune's queue."""
    profile = load_profile(settings.profile)
    return ProvinceConnector(store, settings, profile, ctx.clock, http, QueueInbox(ctx, settings))


async def sync_once(ctx: AppContext, name: str | None = None) -> SyncView:
    """One full round with a province: login, statuses, airings, its pushes, deliver (`province sync`)."""
    settings = ctx.settings.integrations.province(name)
    store = ctx.store()
    try:
        async with HttpClient(settings.timeout_s) as http:
            result = await connector(ctx, store, settings, http).sync_once()
        outbox = channel_view(store, f"province:{settings.name}")
    finally:
        store.close()
    return SyncView(
        province=settings.name,
        statuses=result.statuses,
        airings=result.airings,
        pushed=result.pushed,
        delivered=result.delivered,
        failed=result.failed,
        held_until=result.held_until,
        outbox=outbox,
    )


def status(ctx: AppContext, name: str | None = None) -> list[OutboxChannelView]:
    """How the outbox of each configured province (or the one named) and each webhook stands."""
    integrations = ctx.settings.integrations
    channels = [f"province:{p.name}" for p in integrations.provinces if name in (None, p.name)]
    if name is None:
        channels += [f"webhook:{w.name}" for w in integrations.webhooks]
    elif not channels:
        integrations.province(name)  # raises ConfigError naming the provinces there are
    store = ctx.store(sync_inventory=False)
    try:
        return [channel_view(store, c) for c in channels]
    finally:
        store.close()


def channel_view(store: Store, channel: str) -> OutboxChannelView:
    """One channel's outbox summary as a view."""
    s = store.outbox.summary(channel)
    return OutboxChannelView(
        channel=s.channel,
        pending=s.pending,
        delivered=s.delivered,
        oldest_pending=s.oldest_pending,
        last_error=s.last_error,
    )


@contextlib.asynccontextmanager
async def integrated(ctx: AppContext, store: Store) -> AsyncIterator[None]:
    """Every configured province and webhook receiver, served in the background (by `serve`)."""
    integrations = ctx.settings.integrations
    if not integrations.provinces and not integrations.webhooks:
        yield
        return
    tick = integrations.delivery_interval_s
    timeout = max(
        [p.timeout_s for p in integrations.provinces] + [w.timeout_s for w in integrations.webhooks]
    )
    async with HttpClient(timeout) as http, asyncio.TaskGroup() as tg:
        tasks = [tg.create_task(connector(ctx, store, p, http).run(tick)) for p in integrations.provinces]
        tasks += [
            tg.create_task(_webhooks(WebhookSender(store, w, ctx.clock, http), tick))
            for w in integrations.webhooks
        ]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()


async def _webhooks(sender: WebhookSender, tick_s: float) -> None:
    """Collect and deliver one receiver's events until cancelled; failures logged, never fatal."""
    rounds = 0
    while True:
        try:
            await sender.collect()
            await sender.deliver()
            if rounds % max(1, round(PRUNE_EVERY_S / tick_s)) == 0:
                await sender.dispatcher.prune()
        except Exception:
            log.exception("webhook %s: a delivery round failed", sender.settings.name)
        rounds += 1
        await asyncio.sleep(tick_s)


@contextlib.asynccontextmanager
async def alongside(controller: Controller) -> AsyncIterator[None]:
    """`integrated` as one of `serve`'s companions: on the running controller's settings, clock and store."""
    async with integrated(AppContext(controller.settings, controller.clock), controller.store):
        yield
