"""The console's pages: overview, map, calendar, alerts, bulletins, the broadcast form, a cluster's detail.

Each page is rendered from parts (see `live.py`) so that its event stream can replace any part later.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web
from markupsafe import Markup

from speakerctl.app import approvals, bulletins, console, fleet
from speakerctl.app.access import Action, Actor
from speakerctl.app.console import Console
from speakerctl.app.context import AppContext
from speakerctl.app.schedules import parse_date
from speakerctl.controller.fleetview import DeviceHealth, FleetSnapshot
from speakerctl.controller.service import Controller
from speakerctl.fleet import ZoneTree
from speakerctl.i18n import N_
from speakerctl.store import Store
from speakerctl.web.auth import SCOPE_NAME, VISIT, Guard, Visit, signed_in
from speakerctl.web.live import LiveHub, Parts, Subscriber
from speakerctl.web.render import catalogue, fragment, language_values, respond

DEVICE_STATES = {
    "online": N_("online"),
    "offline": N_("offline"),
    "fault": N_("fault"),
    "playing": N_("playing"),
}
ROLE_NAMES = {
    "administrator": N_("administrator"), "approver": N_("approver"), "operator": N_("operator"),
    "viewer": N_("viewer"),
}  # fmt: skip
WEEKDAYS = (N_("Mon"), N_("Tue"), N_("Wed"), N_("Thu"), N_("Fri"), N_("Sat"), N_("Sun"))


def translated(names: dict[str, str], lang: str) -> dict[str, str]:
    """A table of names in the reader's language."""
    gettext = catalogue(lang).gettext
    return {k: gettext(v) for k, v in names.items()}


def device_state(d: DeviceHealth) -> str:
    """One word for a cluster's colour on the map: offline, fault, playing or online."""
    if not d.online:
        return "offline"
    if d.fault:
        return "fault"
    return "playing" if d.device.playing else "online"


@dataclass(frozen=True, slots=True)
class Snap:
    """One read of the store shared by every page and stream for a moment."""

    fleet: FleetSnapshot
    tree: ZoneTree
    titles: dict[str, str]
    acks: dict[int, str]

    def console(self, actor: Actor) -> Console:
        """The snapshot as this user sees it."""
        return console.console(self.fleet, self.tree, actor, self.titles, self.acks)


def shared_values(lang: str) -> dict[str, Any]:
    """Name tables and helpers every part needs."""
    return {"device_states": translated(DEVICE_STATES, lang), "device_state": device_state}


class PartRenderer:
    """Renders a page's parts for one user and language."""

    def __init__(self, env: jinja2.Environment, page: str, actor: Actor, lang: str) -> None:
        self.env, self.page, self.actor, self.lang = env, page, actor, lang

    @property
    def key(self) -> Hashable:
        """Users who see the same parts of this page."""
        return (self.page, self.lang, self.actor.zone_id, self.actor.role)

    def _part(self, name: str, **values: Any) -> str:
        return fragment(self.env, f"parts/{name}.html", self.lang, **shared_values(self.lang), **values)

    def __call__(self, snap: Snap) -> Parts:
        """Every part of the page, rendered now."""
        c = snap.console(self.actor)
        parts = {"badge": self._part("badge", c=c)}
        if self.page == "overview":
            parts["totals"] = self._part("totals", c=c)
            parts["on-air"] = self._part("on_air", c=c)
            may_stop = self.actor.may(Action.STOP)
            parts["broadcasts"] = self._part("broadcasts", c=c, titles=snap.titles, may_stop=may_stop)
            parts |= {f"zone-{z.zone_id}": self._part("zone_row", z=z) for z in c.zones}
        elif self.page == "map":
            parts |= {f"dev-{d.device.id}": self._part("device_item", d=d) for d in c.devices}
        elif self.page == "alerts":
            parts["alerts"] = self._part("alerts", c=c, may_ack=self.actor.may(Action.ACKNOWLEDGE))
        elif self.page.startswith("device:"):
            wanted = self.page.partition(":")[2]
            for h in (d for d in c.devices if d.device.id == wanted):
                parts["device-state"] = self._part("device_state", h=h)
        return parts


class Pages:
    """The GET side of the console."""

    def __init__(self, controller: Controller, hub: LiveHub, guard: Guard, read: Callable[[], Any]) -> None:
        self.controller, self.hub, self.guard, self._read = controller, hub, guard, read

    @property
    def store(self) -> Store:
        """The controller's store."""
        return self.controller.store

    def routes(self, app: web.Application) -> None:
        """Register the pages."""
        app.router.add_get("/", self.overview, name="overview")
        app.router.add_get("/map", self.map, name="map")
        app.router.add_get("/schedule", self.schedule, name="schedule")
        app.router.add_get("/approvals", self.approvals, name="approvals")
        app.router.add_get("/alerts", self.alerts, name="alerts")
        app.router.add_get("/bulletins", self.bulletins, name="bulletins")
        app.router.add_get("/bulletins/{id:\\d+}/audio", self.audio, name="bulletin-audio")
        app.router.add_get("/broadcast", self.broadcast_form, name="broadcast")
        app.router.add_get("/speak", self.speak, name="speak")
        app.router.add_get("/devices/{id}", self.device, name="device")
        app.router.add_get("/events", self.events, name="events")

    async def page(self, request: web.Request, template: str, page: str, **values: Any) -> web.Response:
        """Render a page with its parts, remembered for its event stream."""
        visit: Visit = request[VISIT]
        assert visit.actor is not None
        snap: Snap = await self._read()
        parts = PartRenderer(aiohttp_jinja2.get_env(request.app), page, visit.actor, visit.lang)(snap)
        token = self.hub.remember(parts)
        context = base_values(request, visit, page) | shared_values(visit.lang) | values
        context |= {"parts": {k: Markup(v) for k, v in parts.items()}, "badge": Markup(parts["badge"])}
        response = respond(request, template, visit.lang, context | {"live": token})
        response.enable_compression()  # a page is loaded once; gzip makes the map's markers cheap on 3G
        return response

    async def overview(self, request: web.Request) -> web.Response:
        """What plays now and where, the broadcasts and their progress, the communes' counts."""
        c = (await self._read()).console(signed_in(request))
        return await self.page(
            request, "overview.html", "overview", zone_keys=[f"zone-{z.zone_id}" for z in c.zones]
        )

    async def map(self, request: web.Request) -> web.Response:
        """The clusters on a map of their communes' outlines."""
        snap: Snap = await self._read()
        c = snap.console(signed_in(request))
        located = [d for d in c.devices if d.device.lat is not None and d.device.lon is not None]
        data = {
            "places": [{"name": p.name, "outline": p.outline} for p in console.outlines(located, snap.tree)],
            "clusters": [_marker(d) for d in located],
        }
        keys = [f"dev-{d.device.id}" for d in c.devices]
        return await self.page(request, "map.html", "map", map_data=data, device_keys=keys)

    async def schedule(self, request: web.Request) -> web.Response:
        """The week's programme as a calendar in local time."""
        tz = self.controller.settings.timezone
        today = console.today(self.controller.clock.now(), tz)
        first = parse_date(request.query.get("from")) or today - timedelta(days=today.weekday())
        actor = signed_in(request)
        days = await asyncio.to_thread(console.week, self.store, actor, first, tz)
        names = await asyncio.to_thread(self._schedule_names)
        lang = request[VISIT].lang
        week = {"previous": first - timedelta(days=7), "following": first + timedelta(days=7)}
        return await self.page(
            request, "schedule.html", "schedule", days=days, today=today, weekdays=_weekdays(lang),
            schedule_names=names[0], target_names=names[1], **{k: v.isoformat() for k, v in week.items()},
        )  # fmt: skip

    def _schedule_names(self) -> tuple[dict[str, str], dict[str, str]]:
        book = {s.id: s.name or s.id for s in self.store.schedules.all()}
        return book, {z.id: z.name for z in self.store.zones.all()} | {
            d.id: d.name for d in self.store.devices.all()
        }

    async def approvals(self, request: web.Request) -> web.Response:
        """The approval queue of the user's zones (Circular 39), each item with approve and reject."""
        ctx = AppContext(self.controller.settings, self.controller.clock)
        items = await asyncio.to_thread(approvals.queue, ctx, actor=signed_in(request))
        titles = {b.id: b.title for b in await asyncio.to_thread(bulletins.library_of, self.store)}
        zones = {z.id: z.name for z in (await self._read()).tree.zones.values()}
        may = signed_in(request).may(Action.APPROVE)
        return await self.page(
            request, "approvals.html", "approvals", items=items, titles=titles, zones=zones, may_approve=may
        )

    async def alerts(self, request: web.Request) -> web.Response:
        """Open alerts grouped by commune, each with an acknowledge button."""
        return await self.page(request, "alerts.html", "alerts")

    async def bulletins(self, request: web.Request) -> web.Response:
        """The library, each bulletin with a player to listen before airing it."""
        found = await asyncio.to_thread(bulletins.library_of, self.store)
        return await self.page(request, "bulletins.html", "bulletins", bulletins=found)

    async def audio(self, request: web.Request) -> web.FileResponse:
        """A bulletin's audio, for the page's player (range requests let it seek)."""
        path, media = await asyncio.to_thread(
            bulletins.audio_file, self.store, self.controller.settings, int(request.match_info["id"])
        )
        return web.FileResponse(
            path, headers={"Content-Type": media, "Cache-Control": "private, max-age=3600"}
        )

    async def broadcast_form(self, request: web.Request) -> web.Response:
        """Pick a bulletin, a zone in your scope and a priority."""
        c = (await self._read()).console(signed_in(request))
        found = await asyncio.to_thread(bulletins.library_of, self.store)
        chosen = int(request.query.get("bulletin", "0") or 0)
        return await self.page(
            request, "broadcast.html", "broadcast", bulletins=found, targets=c.zones, chosen=chosen
        )

    async def speak(self, request: web.Request) -> web.Response:
        """Speak live from this browser's microphone to a zone in your scope (`speak.py` takes the audio)."""
        c = (await self._read()).console(signed_in(request))
        return await self.page(request, "speak.html", "speak", targets=c.zones)

    async def device(self, request: web.Request) -> web.Response:
        """One cluster: its state (live), facts, and volume, ping and reboot."""
        actor, device_id = signed_in(request), request.match_info["id"]
        d = await asyncio.to_thread(fleet.device_seen_by, self.store, actor, device_id)
        return await self.page(request, "device.html", f"device:{device_id}", d=d)

    async def events(self, request: web.Request) -> web.StreamResponse:
        """The page's event stream: the parts that change, as they change."""
        visit: Visit = request[VISIT]
        assert visit.actor is not None
        page = request.query.get("page", "overview")
        render = PartRenderer(aiohttp_jinja2.get_env(request.app), page, visit.actor, visit.lang)
        held = self.hub.held(request.query.get("token", ""))

        async def signed_in() -> bool:
            return await self.guard.holds(visit.token)

        return await self.hub.stream(request, Subscriber(render.key, render, held, signed_in))


def _marker(d: DeviceHealth) -> dict[str, Any]:
    return {"id": d.device.id, "name": d.device.name, "lat": d.device.lat, "lon": d.device.lon,
            "state": device_state(d)}  # fmt: skip


def _weekdays(lang: str) -> list[str]:
    gettext = catalogue(lang).gettext
    return [gettext(w) for w in WEEKDAYS]


def base_values(request: web.Request, visit: Visit, page: str) -> dict[str, Any]:
    """What the layout needs: the user, their CSRF token, the language, where they are."""
    actor = visit.actor
    gettext = catalogue(visit.lang).gettext
    role = gettext(ROLE_NAMES.get(actor.role, actor.role)) if actor else ""
    return language_values(visit.lang) | {
        "actor": actor, "csrf": visit.csrf, "page": page, "here": request.path_qs, "role_name": role,
        "scope_name": request.get(SCOPE_NAME, ""), "live": None, "badge": "",
    }  # fmt: skip
