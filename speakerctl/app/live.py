"""Live audio: relay a station or play a file as if live to zones, and stop live streams."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

from speakerctl.app import bulletins, names, policy
from speakerctl.app import confirmation as confirming
from speakerctl.app.access import Action, Actor, authorize
from speakerctl.app.context import AppContext
from speakerctl.app.live_views import LiveStreamDetailView, LiveStreamView, stream_detail, stream_view
from speakerctl.app.runtime import running_controller
from speakerctl.app.streaming import LiveRequest, from_browser, stream_live
from speakerctl.audio.live import browser, microphone
from speakerctl.controller.live import LiveReport, Progress, send_stop
from speakerctl.controller.planning import resolve_targets
from speakerctl.errors import UsageError
from speakerctl.i18n import _
from speakerctl.protocol import Priority
from speakerctl.store import Store


def parse_duration(text: str) -> float:
    """Seconds from `90s`, `30m`, `2h` or a bare number of seconds."""
    units = {"s": 1, "m": 60, "h": 3600}
    number, unit = (text[:-1], text[-1]) if text and text[-1] in units else (text, "s")
    try:
        return float(number) * units[unit]
    except ValueError:
        raise UsageError(
            _("cannot read the duration {text!r}").format(text=text), hint=_("e.g. 30m")
        ) from None


def recent(ctx: AppContext, limit: int = 20) -> list[LiveStreamView]:
    """The latest live streams, newest first, with how the clusters fared."""
    with ctx.store(sync_inventory=False) as store:
        return [stream_view(r, store.live.clusters(r.id)) for r in store.live.latest(limit)]


def show(ctx: AppContext, stream: str) -> LiveStreamDetailView:
    """One live stream, cluster by cluster (NotFound if there is none by that id)."""
    with ctx.store(sync_inventory=False) as store:
        return stream_detail(store.live.get(stream), store.live.clusters(stream))


async def stop_live(ctx: AppContext, *, actor: Actor) -> list[str]:
    """Stop every live stream the store shows running (started by any process); their ids.

    NotAllowed before anything is sent unless `actor` may stop each of them (STOP on its zones).
    """
    store = ctx.store()
    for record in store.live.running():
        authorize(actor, Action.STOP, policy.zones_of(store, record.targets), policy.zone_tree(store))
    async with running_controller(ctx) as controller:
        running = await asyncio.to_thread(controller.store.live.running)
        for record in running:
            cmd_topics, _ = await asyncio.to_thread(resolve_targets, controller.store, record.targets)
            level = Priority(record.priority)
            await send_stop(
                controller.link, controller.signer, controller.clock, cmd_topics, record.id, level
            )
        return [r.id for r in running]


async def live(
    ctx: AppContext,
    request: LiveRequest,
    progress: Progress | None = None,
    stop: asyncio.Event | None = None,
    *,
    actor: Actor,
    confirmed: bool = False,
) -> LiveReport:
    """Run a live stream on a controller of its own (the CLI's `live relay` / `live file` / `live mic`).

    NotAllowed before anything is captured or sent unless the request's actor may broadcast to its zones;
    NeedsConfirmation unless an emergency or a whole province was `confirmed`.
    """
    request = authorized(ctx, request, actor, confirmed=confirmed)
    async with running_controller(ctx) as controller:
        return await stream_live(controller, request, progress, stop)


def authorized(
    ctx: AppContext, request: LiveRequest, actor: Actor, *, confirmed: bool = False
) -> LiveRequest:
    """The request with its targets resolved (names too), if `actor` may broadcast there; else NotAllowed."""
    return authorized_on(ctx.store(), request, actor, confirmed=confirmed)


def authorized_on(
    store: Store, request: LiveRequest, actor: Actor, *, confirmed: bool = False
) -> LiveRequest:
    """`authorized` on an open store (the console's controller): NotAllowed outside the actor's zones,
    NeedsConfirmation for an unconfirmed emergency or whole province, as for bulletins."""
    resolved = _allowed(store, request, actor)
    confirming.require(confirmation_on(store, resolved), confirmed)
    return resolved


def _allowed(store: Store, request: LiveRequest, actor: Actor) -> LiveRequest:
    targets = tuple(names.target_ids(store, request.targets))
    authorize(actor, Action.BROADCAST, policy.zones_of(store, targets), policy.zone_tree(store))
    return replace(request, targets=targets, actor=actor.name)


def confirmation(ctx: AppContext, request: LiveRequest, actor: Actor) -> confirming.Confirmation | None:
    """The question to ask before a live stream airs (an emergency, a whole province), or None;
    NotAllowed first if `actor` may not broadcast there."""
    store = ctx.store()
    return confirmation_on(store, _allowed(store, request, actor))


def confirmation_on(store: Store, request: LiveRequest) -> confirming.Confirmation | None:
    """`confirmation` for a request whose targets are resolved."""
    return confirming.needed(store, request.targets, request.priority, confirming.Kind.LIVE)


def filler(ctx: AppContext, text: str) -> str:
    """The audio file of `--filler`: a bulletin id (its cached file) or a path (UsageError if missing)."""
    if text.isdigit():
        with ctx.store(sync_inventory=False) as store:
            return str(bulletins.audio_file(store, ctx.settings, int(text))[0])
    if not Path(text).is_file():
        raise UsageError(
            _("no such filler file: {path}").format(path=text), hint=_("give a bulletin id or an audio file")
        )
    return text


def with_priority(request: LiveRequest, level: str) -> LiveRequest:
    """The request at a priority named on the command line."""
    try:
        return replace(request, priority=Priority[level.upper()])
    except KeyError:
        raise UsageError(
            _("unknown priority {level!r}").format(level=level), hint=_("use normal, priority or emergency")
        ) from None


__all__ = [
    "LiveRequest",
    "authorized_on",
    "browser",
    "confirmation",
    "filler",
    "from_browser",
    "live",
    "microphone",
    "parse_duration",
    "recent",
    "show",
    "stop_live",
    "stream_live",
    "with_priority",
]
