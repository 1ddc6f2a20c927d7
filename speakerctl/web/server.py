"""The operator web server, run in the controller's loop: the console, its JSON API and /metrics.

The console (pages.py, actions.py, live.py) needs a signed-in user; the versioned API `/api/v1/` (api.py)
an API token; the unversioned `/api/fleet|devices|alerts` (deprecated: they point to their /api/v1
successors) and `/metrics` stay read-only and open, like before, for scripts and Prometheus: the Host
check keeps other sites out.
`/public/v1/...` (public.py) is the citizens' feed of what aired: open, public fields only.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from speakerctl.app import alerts, console, fleet
from speakerctl.app.accounts import SessionLimits
from speakerctl.app.context import AppContext
from speakerctl.app.views import FleetView, dump_all
from speakerctl.controller.fleetview import FleetSnapshot
from speakerctl.controller.health import HealthPolicy
from speakerctl.controller.service import Controller
from speakerctl.errors import LinkError, SpeakerctlError, UsageError
from speakerctl.fleet import ZoneTree
from speakerctl.logs import Throttled
from speakerctl.web import metrics, render
from speakerctl.web.actions import Actions
from speakerctl.web.api import Api
from speakerctl.web.auth import SCOPE_NAME, VISIT, Guard, ensure_browser, public
from speakerctl.web.errors import answer_error
from speakerctl.web.live import REREAD_S, LiveHub
from speakerctl.web.operations import PREFIX
from speakerctl.web.pages import Pages, Snap
from speakerctl.web.public import PublicFeed
from speakerctl.web.speak import Speak

log = logging.getLogger(__name__)
SNAPSHOT_TTL_S = 1.0
"""Requests within this long share one read of the store."""
DEPRECATED_AT = "@1796169600"
"""When the unversioned /api/fleet|devices|alerts were deprecated (2026-12-02, /api/v1), RFC 9745 form."""
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
WILDCARDS = frozenset({"", "0.0.0.0", "::"})


def allowed_hosts(bound: str, extra: str) -> frozenset[str]:
    """The Host names the page answers to: the bound address, loopback names on loopback, `extra`."""
    names = {n.strip().lower() for n in extra.split(",") if n.strip()}
    if bound in WILDCARDS or bound in LOOPBACK_NAMES or bound.startswith("127."):
        names |= LOOPBACK_NAMES
    if bound not in WILDCARDS:
        names.add(bound.lower())
    return frozenset(names)


def host_name(header: str) -> str:
    """The name in a Host header, without its port or IPv6 brackets."""
    if header.startswith("["):
        return header[1:].partition("]")[0].lower()
    return header.rpartition(":")[0].lower() if header.count(":") == 1 else header.lower()


def parse_bind(text: str) -> tuple[str, int]:
    """ "127.0.0.1:8080" → ("127.0.0.1", 8080); a bare port binds loopback."""
    host, _, port = text.rpartition(":")
    try:
        number = int(port)
    except ValueError:
        raise UsageError(f"cannot read {text!r} as HOST:PORT", hint="e.g. --http 127.0.0.1:8080") from None
    if not 0 <= number <= 65535:
        raise UsageError(f"port {number} out of range")
    return host.strip("[]") or "127.0.0.1", number


@dataclass(frozen=True, slots=True)
class _Cached:
    at: float
    overview: fleet.Overview
    view: FleetView
    snap: Snap


class WebServer:
    """Serves the fleet snapshot as a page, as JSON and as Prometheus metrics."""

    def __init__(self, controller: Controller, policy: HealthPolicy, host: str, port: int) -> None:
        self.controller = controller
        self.policy = policy
        self.host, self.port = host, port
        self._cached: _Cached | None = None
        self._lock = asyncio.Lock()
        self._rate = metrics.RateMeter(controller.clock)
        self._registry = metrics.registry(self._readings)
        self._runner: web.AppRunner | None = None
        self._warnings = Throttled(log, controller.clock.monotonic, level=logging.ERROR)
        self.hub = LiveHub(self._fresh_snap, self._stamp)
        self.guard = Guard(controller.store, controller.clock, SessionLimits.of(controller.settings))
        self.pages = Pages(controller, self.hub, self.guard, self._snap)
        self.actions = Actions(controller, self.hub, self.guard)
        self.api = Api(controller, policy, self._fleet_snapshot, self.actions.cap_desk)
        self.speak = Speak(controller, self.hub)
        self._hub_task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        """Where the page is served."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def app(self) -> web.Application:
        """The aiohttp application; it answers only to its own names (no DNS rebinding)."""
        app = web.Application(middlewares=[self._check_host, self._answer_errors, self._visit])
        render.setup(app, self.controller.settings.timezone, self.controller.clock)
        self.pages.routes(app)
        self.actions.routes(app)
        self.api.routes(app)
        self.speak.routes(app)
        app.router.add_static("/static/", STATIC, name="static", append_version=False)
        app.router.add_get("/api/fleet", self._fleet)
        app.router.add_get("/api/devices", self._devices)
        app.router.add_get("/api/alerts", self._alerts)
        app.router.add_get("/metrics", self._metrics)
        c = self.controller
        PublicFeed(c.store, c.settings.integrations.public_feed, c.clock).routes(app)
        app.on_response_prepare.append(_cache_static)
        return app

    @web.middleware
    async def _check_host(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        allowed = allowed_hosts(self.host, self.controller.settings.web_hosts)
        if host_name(request.headers.get("Host", "")) not in allowed:
            raise web.HTTPMisdirectedRequest(text="unknown Host; add it to the web_hosts setting\n")
        return await handler(request)

    @web.middleware
    async def _answer_errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Any failure of a handler answers 500 in one line; the server keeps serving."""
        try:
            return await handler(request)
        except web.HTTPException:
            raise
        except SpeakerctlError as exc:
            return answer_error(request, exc)
        except Exception as exc:
            self._warnings.log("failed requests", request.path, "%s failed", request.path, exc_info=True)
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            return web.Response(status=500, text=f"error: {message}\n")

    @web.middleware
    async def _visit(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Who is asking; the sign-in page for a stranger, 403 for a POST without its CSRF token."""
        if request.path.startswith(("/static/", "/api/", "/metrics", "/public/")):
            return await handler(request)
        visit = request[VISIT] = await self.guard.visit(request)
        with render.speaking(visit.lang):  # a refusal raised below is worded in the reader's language
            if visit.actor is None and not public(request.path):
                raise _to_login(request)
            if request.method == "POST":
                await self.guard.check_csrf(request, visit)
            if visit.actor is not None and visit.actor.zone_id:
                request[SCOPE_NAME] = (await self._snap()).tree.name(visit.actor.zone_id)
            response = await handler(request)
        ensure_browser(request, response)
        return response

    async def start(self) -> None:
        """Listen on the given address only; a port of 0 picks a free one."""
        self._hub_task = asyncio.get_running_loop().create_task(self.hub.run())
        self._runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        try:
            await site.start()
        except OSError as exc:
            await self.stop()
            raise LinkError(f"cannot serve HTTP on {self.host}:{self.port}: {exc}") from exc
        if self.port == 0 and self._runner.addresses:
            self.port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        """End the event streams and the followed broadcasts, close the listener and every connection."""
        self.hub.close()
        await self.actions.stop()
        await self.api.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._hub_task is not None:
            self._hub_task.cancel()
            await asyncio.gather(self._hub_task, return_exceptions=True)
            self._hub_task = None

    async def _read(self) -> _Cached:
        async with self._lock:
            if self._cached is None or self.controller.clock.monotonic() - self._cached.at > SNAPSHOT_TTL_S:
                self._cached = await asyncio.to_thread(self._read_store)
            return self._cached

    def _read_store(self) -> _Cached:
        c = self.controller
        ctx = AppContext(c.settings, c.clock)
        overview = fleet.overview(c.store, ctx, self.policy, c.last_result)
        snap = overview.snapshot
        titles = console.titles(c.store, snap)
        seen = Snap(snap, ZoneTree(c.store.zones.all()), titles, alerts.acknowledged(c.store, snap.alerts))
        return _Cached(self.controller.clock.monotonic(), overview, overview.view, seen)

    async def _fresh_snap(self) -> Snap:
        """A new read of the store for the live hub (which reads only when something came in)."""
        async with self._lock:
            self._cached = await asyncio.to_thread(self._read_store)
            return self._cached.snap

    async def _fleet_snapshot(self) -> FleetSnapshot:
        """The fleet as last read (at most a second ago), for the API."""
        return (await self._read()).overview.snapshot

    async def _snap(self) -> Snap:
        """The store as the console sees it, read at most once a second."""
        return (await self._read()).snap

    def _stamp(self) -> Hashable:
        """Changes whenever the store may have: new reports, or time for the periodic re-read."""
        counters = self.controller.ingestor.counters
        # `flushes`: a report just written to the store is read at once, not at the next report.
        periodic = int(self.controller.clock.monotonic() // REREAD_S)
        return counters.statuses, counters.events, counters.flushes, periodic

    async def _fleet(self, _: web.Request) -> web.Response:
        return _json((await self._read()).view.dump(), "fleet")

    async def _devices(self, _: web.Request) -> web.Response:
        return _json(dump_all((await self._read()).view.devices), "devices")

    async def _alerts(self, _: web.Request) -> web.Response:
        return _json(dump_all((await self._read()).view.alerts), "alerts")

    async def _metrics(self, _: web.Request) -> web.Response:
        await self._read()  # the collector reports this snapshot
        body = generate_latest(self._registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    def _readings(self) -> metrics.Readings:
        """What a scrape reports: the snapshot `_metrics` just read, the ingestion counters now."""
        assert self._cached is not None, "_metrics reads the snapshot before it collects"
        overview, counters = self._cached.overview, self.controller.ingestor.counters
        rate = self._rate.read(counters.statuses)
        latency = overview.reach_latency_s
        return metrics.Readings(overview.snapshot, overview.deliveries, counters, rate, latency)


STATIC = Path(__file__).parent / "static"


async def _cache_static(request: web.Request, response: web.StreamResponse) -> None:
    """Static files are cached a day by the browser: an open page then costs only its events."""
    if request.path.startswith("/static/"):
        response.headers["Cache-Control"] = "public, max-age=86400"


def _to_login(request: web.Request) -> web.HTTPException:
    """Send a stranger to the sign-in page (htmx follows HX-Redirect rather than swapping a page)."""
    target = "/login?next=" + quote(request.path_qs, safe="")
    if request.headers.get("HX-Request"):
        return web.HTTPUnauthorized(headers={"HX-Redirect": target})
    return web.HTTPSeeOther(target)


def _json(data: dict[str, Any] | list[dict[str, Any]], successor: str) -> web.Response:
    """A JSON response of the unversioned API, UTF-8 kept as is, pointing to its /api/v1 successor."""
    # RFC 9745 (Deprecation, a date) and RFC 8288 links: scripts see where to move before it goes.
    headers = {"Deprecation": DEPRECATED_AT, "Link": f'<{PREFIX}/{successor}>; rel="successor-version"'}
    return web.json_response(data, dumps=lambda d: json.dumps(d, ensure_ascii=False), headers=headers)
