"""/api/v1 end to end: a token starts a broadcast that simulated clusters play, its report and the play
log say so, and a token stops a long one on every cluster (real Mosquitto, real agents)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from test_faults import random_bulletin
from test_stop import _two_communes
from waiting import SAFETY_NET_S

from simulator.faults import FleetRunner
from simulator.fleet import Fleet, FleetOptions
from speakerctl.app import accounts, runtime, tokens
from speakerctl.app.access import local_administrator
from speakerctl.app.context import open_store
from speakerctl.broker.mosquitto import MosquittoConfig, MosquittoProcess
from speakerctl.broker.ports import free_port
from speakerctl.config import Settings
from speakerctl.fleet import load_inventory, provisioning_records
from speakerctl.security.keys import load_or_create_signer, trusted_path
from speakerctl.web import front_end


@dataclass
class Served:
    """The API of a running controller over a commune of simulated clusters."""

    url: str
    token: str
    commune: str
    clusters: int
    short: int
    long: int

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.token}"}
        async with (
            aiohttp.ClientSession() as http,
            http.request(method, self.url + "api/v1/" + path, json=body, headers=headers) as r,
        ):
            return r.status, await r.json()


@pytest_asyncio.fixture
async def served(tmp_path_factory: pytest.TempPathFactory, mosquitto_binary: str) -> AsyncIterator[Served]:
    root = tmp_path_factory.mktemp("apifleet")
    with MosquittoProcess(MosquittoConfig(port=free_port()), root / "mq", binary=mosquitto_binary) as mq:
        settings = Settings(data_dir=root / "ctl", broker=mq.url, accept_window_s=1)
        load_or_create_signer(settings.keys_dir)
        commune = _two_communes()[0]
        inside = {d.id for d in load_inventory().devices_under(commune)}
        clusters = tuple(c for c in provisioning_records(load_inventory()) if c.device_id in inside)
        options = FleetOptions(root=root / "fleet", trust_file=trusted_path(settings.keys_dir))
        fleet = Fleet(clusters, settings.broker_address, options)
        store = open_store(settings)
        short = random_bulletin(store, settings.content_dir, 16384, duration_ms=500)
        long = random_bulletin(store, settings.content_dir, 16384, duration_ms=600_000)
        ctx = runtime.context(settings)
        admin = local_administrator()
        accounts.create_user(
            ctx, accounts.NewUser("quan-tri", "administrator", None, "mật khẩu dài"), actor=admin
        )
        token = tokens.create(ctx, "quan-tri", actor=admin).token
        controller = runtime.controller(ctx, store)
        async with FleetRunner() as runner:
            for device in fleet.devices.values():
                runner.start(device.agent)
            await fleet.wait_online(SAFETY_NET_S)
            async with controller.running(), runtime.monitored(controller, front_end("127.0.0.1:0")) as url:
                assert url is not None
                yield Served(url, token, commune, len(clusters), short, long)


async def _until(served: Served, path: str, done: Any) -> Any:
    for _ in range(int(SAFETY_NET_S / 0.2)):
        status, body = await served.call("GET", path)
        if status == 200 and done(body):
            return body
        await asyncio.sleep(0.2)  # polling another component over HTTP, as a script would
    raise AssertionError(f"{path} never got there: {body}")


async def test_a_token_airs_a_bulletin_on_the_commune_and_stops_a_long_one(served: Served) -> None:
    status, started = await served.call(
        "POST", "broadcasts", {"bulletin": served.short, "targets": [served.commune]}
    )
    assert status == 202 and started["items"] == [] and started["broadcast"]
    report = await _until(
        served, f"broadcasts/{started['broadcast']}", lambda r: r["counts"].get("finished") == served.clusters
    )
    assert report["started_by"] == "quan-tri" and report["targets"] == [served.commune]
    _, plays = await served.call("GET", f"plays?since=2000-01-01&zone={served.commune}")
    assert sum(p["broadcast"] == started["broadcast"] for p in plays) == served.clusters
    status, long = await served.call(
        "POST", "broadcasts", {"bulletin": served.long, "targets": [served.commune]}
    )
    await _until(
        served, f"broadcasts/{long['broadcast']}", lambda r: r["counts"].get("playing") == served.clusters
    )
    status, stopped = await served.call("POST", f"broadcasts/{long['broadcast']}/stop")
    assert status == 200 and stopped["whole"] and stopped["stopped_by"] == "quan-tri"
    assert stopped["clusters"] == served.clusters and stopped["confirmed"] == served.clusters
