"""Operator console traffic: what an open page costs while nothing happens, and during a broadcast.

A controller with its web server, a simulated fleet (the inventory's 279 clusters) on a private
Mosquitto, and one signed-in browser-like client holding the overview's and the map's event streams
open. Every byte the server sends on each stream is counted (HTTP headers of the stream included).

Prints `name: value` lines:
  clusters                       simulated clusters
  overview_page_bytes            the overview's HTML as sent (gzip; static files are cached a day)
  map_page_bytes                 the map's HTML, with its outlines and markers
  quiet_overview_bytes_per_min   a stream of the overview, clusters silent (no status reports)
  quiet_map_bytes_per_min
  reporting_overview_bytes_per_min  the same with every cluster reporting at the default interval
  reporting_map_bytes_per_min       (heartbeat 60 s: 279 statuses a minute, each written to the store)
  broadcast_overview_bytes       a broadcast to one commune followed on the overview, until it is done
  old_page_bytes_per_min         the old read-only page: 180 KB polled every 3 s (the baseline)

Usage: .venv/bin/python bench/console_idle.py [--window 120] [--count 279]
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import re
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp

from simulator.fleet import Fleet, FleetOptions
from speakerctl.app import runtime
from speakerctl.app.access import local_administrator
from speakerctl.app.accounts import NewUser, create_user
from speakerctl.app.bulletins import import_bulletin
from speakerctl.audio import generate_tone
from speakerctl.broker.mosquitto import MosquittoConfig, MosquittoProcess
from speakerctl.broker.ports import free_port
from speakerctl.clock import SystemClock
from speakerctl.config import Settings
from speakerctl.controller.service import BroadcastRequest, Controller
from speakerctl.fleet import load_inventory, provisioning_records, scaled_inventory
from speakerctl.security.keys import trusted_path
from speakerctl.web import front_end

OLD_PAGE_BYTES_PER_MIN = 180_000 * 20
PASSWORD = "bench-password-1"


class Stream:
    """One page's event stream, counting what arrives."""

    def __init__(self) -> None:
        self.bytes = 0
        self.events = 0

    async def read(self, response: aiohttp.ClientResponse) -> None:
        """Count until cancelled."""
        self.bytes += sum(len(k) + len(v) + 4 for k, v in response.raw_headers) + 17
        async for chunk in response.content.iter_any():
            self.bytes += len(chunk)
            self.events += chunk.count(b"event: patch")


async def sign_in(http: aiohttp.ClientSession, url: str) -> None:
    """Sign in through the form, as a browser does."""
    async with http.get(url + "login") as r:
        csrf = re.search(r'name="csrf" value="([^"]+)"', await r.text())
    assert csrf is not None
    form = {"csrf": csrf.group(1), "name": "bench", "password": PASSWORD, "next": "/"}
    async with http.post(url + "login", data=form) as r:
        assert r.status == 200 and "speakerctl_session" in {c.key for c in http.cookie_jar}, r.status


async def page(http: aiohttp.ClientSession, url: str, path: str) -> tuple[int, str]:
    """A page's size and the token of its event stream."""
    async with http.get(url + path, headers={"Accept-Encoding": "gzip"}) as r:  # as browsers do
        sent = await r.read()
        gzipped = r.headers.get("Content-Encoding") == "gzip"
    body = gzip.decompress(sent) if gzipped else sent
    token = re.search(rb'data-live="/events\?page=[^&]+&amp;token=([^"]+)"', body)
    assert token is not None
    return len(sent), token.group(1).decode()


@asynccontextmanager
async def streams(
    http: aiohttp.ClientSession, url: str, tokens: dict[str, str]
) -> AsyncIterator[dict[str, Stream]]:
    """Hold every page's stream open while the block runs."""
    counted = {name: Stream() for name in tokens}
    async with asyncio.TaskGroup() as tg:
        tasks, responses = [], []
        for name, token in tokens.items():
            responses.append(await http.get(f"{url}events?page={name}&token={token}"))
            tasks.append(tg.create_task(counted[name].read(responses[-1])))
        try:
            yield counted
        finally:
            for task in tasks:
                task.cancel()
            for response in responses:
                response.close()


async def window(http: aiohttp.ClientSession, url: str, seconds: float) -> dict[str, float]:
    """Bytes per minute on the overview's and the map's streams over `seconds`."""
    tokens = {name: (await page(http, url, path))[1] for name, path in (("overview", ""), ("map", "map"))}
    async with streams(http, url, tokens) as counted:
        await asyncio.sleep(2)  # the first patch after connecting is not idle traffic
        start = {n: s.bytes for n, s in counted.items()}
        await asyncio.sleep(seconds)
        return {n: (s.bytes - start[n]) * 60 / seconds for n, s in counted.items()}


async def run_fleet(settings: Settings, count: int, heartbeat_s: float, root: Path) -> Fleet:
    """Start the simulated clusters."""
    inventory = scaled_inventory(load_inventory(), count)
    options = FleetOptions(root=root, heartbeat_s=heartbeat_s, trust_file=trusted_path(settings.keys_dir))
    return Fleet(provisioning_records(inventory), settings.broker_address, options)


async def measure(
    settings: Settings, count: int, heartbeat_s: float, seconds: float, root: Path
) -> dict[str, float]:
    """One phase: the fleet at `heartbeat_s`, the controller, the console and its streams."""
    controller = runtime.controller(runtime.context(settings))
    fleet = await run_fleet(settings, count, heartbeat_s, root / f"fleet-{int(heartbeat_s)}")
    async with asyncio.TaskGroup() as tg:
        fleet_task = tg.create_task(fleet.run())
        await fleet.wait_online(180)
        async with (
            controller.running(),
            runtime.monitored(controller, front_end("127.0.0.1:0")) as url,
            aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True), auto_decompress=False) as http,
        ):
            assert url is not None
            await sign_in(http, url)
            sizes = {
                "overview_page_bytes": (await page(http, url, ""))[0],
                "map_page_bytes": (await page(http, url, "map"))[0],
            }
            rates = await window(http, url, seconds)
            commune = fleet_zone(controller, fleet)
            extra = await broadcast_cost(controller, http, url, commune) if heartbeat_s < 600 else {}
        fleet_task.cancel()
    return sizes | {f"{k}_bytes_per_min": v for k, v in rates.items()} | extra


def fleet_zone(controller: Controller, fleet: Fleet) -> str:
    """The commune of a simulated cluster."""
    return controller.store.devices.get(next(iter(fleet.devices))).zone_id


async def broadcast_cost(
    controller: Controller, http: aiohttp.ClientSession, url: str, commune: str
) -> dict[str, float]:
    """Bytes the overview's stream carries while a broadcast to one commune runs to its end."""
    tone = generate_tone(5.0, path=controller.settings.data_dir / "tone.wav")
    bulletin, _ = await asyncio.to_thread(
        import_bulletin, controller.store, controller.settings, SystemClock(), tone, "Bản tin thử"
    )
    _, token = await page(http, url, "")
    async with streams(http, url, {"overview": token}) as counted:
        await asyncio.sleep(2)
        before = counted["overview"].bytes
        await controller.broadcast(BroadcastRequest(bulletin.id, (commune,)))
        await asyncio.sleep(2)  # the last counts reach the page
        return {"broadcast_overview_bytes": counted["overview"].bytes - before}


async def main(seconds: float, count: int) -> None:
    with (
        tempfile.TemporaryDirectory() as tmp,
        MosquittoProcess(MosquittoConfig(port=free_port()), Path(tmp) / "mq") as mq,
    ):
        root = Path(tmp)
        settings = Settings(data_dir=root / "controller", broker=mq.url, accept_window_s=2.0)
        create_user(
            runtime.context(settings),
            NewUser("bench", "operator", None, PASSWORD),
            actor=local_administrator(),
        )
        print(f"clusters: {count}")
        started = time.monotonic()
        quiet = await measure(settings, count, 3600.0, seconds, root)
        reporting = await measure(settings, count, 60.0, seconds, root)
        for name in ("overview_page_bytes", "map_page_bytes"):
            print(f"{name}: {quiet[name]}")
        for prefix, found in (("quiet", quiet), ("reporting", reporting)):
            for page_name in ("overview", "map"):
                print(f"{prefix}_{page_name}_bytes_per_min: {found[page_name + '_bytes_per_min']:.0f}")
        print(f"broadcast_overview_bytes: {reporting.get('broadcast_overview_bytes', 0):.0f}")
        print(f"old_page_bytes_per_min: {OLD_PAGE_BYTES_PER_MIN}")
        print(f"bench_s: {time.monotonic() - started:.0f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=float, default=120.0, help="seconds measured per phase")
    parser.add_argument("--count", type=int, default=279)
    args = parser.parse_args()
    asyncio.run(main(args.window, args.count))
