"""The operator web server: a read-only page, its JSON API and /metrics, run in the controller's loop."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from typing import Any

from aiohttp import web

from speakerctl.controller.fleetview import FleetSnapshot, fleet_snapshot, reach_latency_s, state_counts
from speakerctl.controller.health import HealthPolicy
from speakerctl.controller.service import Controller
from speakerctl.errors import ConfigError, LinkError
from speakerctl.web import metrics

log = logging.getLogger(__name__)
SNAPSHOT_TTL_S = 1.0
"""Requests within this long share one read of the store."""


def parse_bind(text: str) -> tuple[str, int]:
    """ "127.0.0.1:8080" → ("127.0.0.1", 8080); a bare port binds loopback."""
    host, _, port = text.rpartition(":")
    try:
        number = int(port)
    except ValueError:
        raise ConfigError(f"cannot read {text!r} as HOST:PORT", hint="e.g. --http 127.0.0.1:8080") from None
    if not 0 <= number <= 65535:
        raise ConfigError(f"port {number} out of range")
    return host.strip("[]") or "127.0.0.1", number


@dataclass(slots=True)
class _Cached:
    at: float
    snapshot: FleetSnapshot
    deliveries: dict[str, int]
    reach_latency_s: float | None


class WebServer:
    """Serves the fleet snapshot as a page, as JSON and as Prometheus metrics."""

    def __init__(self, controller: Controller, policy: HealthPolicy, host: str, port: int) -> None:
        self.controller = controller
        self.policy = policy
        self.host, self.port = host, port
        self._cached: _Cached | None = None
        self._lock = asyncio.Lock()
        self._rate = metrics.RateMeter(controller.clock)
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        """Where the page is served."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def app(self) -> web.Application:
        """The aiohttp application."""
        app = web.Application()
        app.router.add_get("/", self._page)
        app.router.add_get("/api/fleet", self._fleet)
        app.router.add_get("/api/devices", self._devices)
        app.router.add_get("/api/alerts", self._alerts)
        app.router.add_get("/metrics", self._metrics)
        return app

    async def start(self) -> None:
        """Listen on the given address only; a port of 0 picks a free one."""
        self._runner = web.AppRunner(self.app(), access_log=None)
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
        """Close the listener and every connection."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _read(self) -> _Cached:
        async with self._lock:
            if self._cached is None or self.controller.clock.monotonic() - self._cached.at > SNAPSHOT_TTL_S:
                self._cached = await asyncio.to_thread(self._read_store)
            return self._cached

    def _read_store(self) -> _Cached:
        store = self.controller.store
        snapshot = fleet_snapshot(store, self.controller.clock.now(), self.policy)
        last = snapshot.broadcasts[0].broadcast if snapshot.broadcasts else None
        latency = reach_latency_s(store, last) if last else None
        ran = self.controller.last_result
        if ran is not None and last is not None and ran.broadcast_id == last.id and ran.reach_latency_s:
            latency = ran.reach_latency_s  # measured here on one monotonic clock: better than device stamps
        return _Cached(self.controller.clock.monotonic(), snapshot, store.deliveries.totals(), latency)

    async def _page(self, _: web.Request) -> web.Response:
        html = resources.files("speakerctl.web").joinpath("page.html").read_text(encoding="utf-8")
        return web.Response(text=html, content_type="text/html", charset="utf-8")

    async def _fleet(self, _: web.Request) -> web.Response:
        return web.json_response(fleet_json((await self._read()).snapshot), dumps=_dumps)

    async def _devices(self, _: web.Request) -> web.Response:
        return web.json_response(fleet_json((await self._read()).snapshot)["devices"], dumps=_dumps)

    async def _alerts(self, _: web.Request) -> web.Response:
        return web.json_response(fleet_json((await self._read()).snapshot)["alerts"], dumps=_dumps)

    async def _metrics(self, _: web.Request) -> web.Response:
        cached = await self._read()
        counters = self.controller.ingestor.counters
        text = metrics.render(
            cached.snapshot,
            cached.deliveries,
            counters,
            self._rate.read(counters.statuses),
            cached.reach_latency_s,
        )
        return web.Response(body=text.encode(), headers={"Content-Type": metrics.CONTENT_TYPE})


def _dumps(data: object) -> str:
    return json.dumps(data, ensure_ascii=False, default=_default)


def _default(value: object) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def fleet_json(snapshot: FleetSnapshot) -> dict[str, Any]:
    """The snapshot as the page and scripts read it."""
    return {
        "at": snapshot.at,
        "totals": dict(state_counts(snapshot)),
        "zones": [
            {
                "id": z.zone_id,
                "name": z.name,
                "kind": z.kind,
                "depth": z.depth,
                "total": z.total,
                "online": z.online,
                "offline": z.offline,
                "fault": z.fault,
                "last_reached": z.last_reached,
                "last_targeted": z.last_targeted,
                "last_played": z.last_played,
            }
            for z in snapshot.zones
        ],
        "devices": [
            {
                "id": h.device.id,
                "name": h.device.name,
                "zone": h.device.zone_id,
                "online": h.online,
                "fault": h.fault,
                "alerts": list(h.alerts),
                "volume": h.device.volume,
                "playing": h.device.playing,
                "amplifier": h.device.amplifier,
                "power": h.device.power_source,
                "battery_pct": h.device.battery_pct,
                "network": h.device.link_network,
                "rssi_dbm": h.device.rssi_dbm,
                "temperature_c": h.device.temperature_c,
                "clock_offset_ms": h.device.clock_offset_ms,
                "firmware": h.device.firmware,
                "last_seen": h.device.last_seen,
            }
            for h in snapshot.devices
        ],
        "alerts": [
            {"id": a.id, "kind": a.kind, "device": a.device_id, "opened_at": a.opened_at, "detail": a.detail}
            for a in snapshot.alerts
        ],
        "broadcasts": [
            {
                "id": b.broadcast.id,
                "state": b.broadcast.state.value,
                "created_at": b.broadcast.created_at,
                "targets": list(b.broadcast.targets),
                "targeted": b.targeted,
                "reached": b.reached,
                "played": b.played,
            }
            for b in snapshot.broadcasts
        ],
    }
