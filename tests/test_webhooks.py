"""Outbound webhooks against a real receiver on loopback, and the public feed of what aired (JSON, RSS)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from defusedxml import ElementTree

from speakerctl.app import publicfeed
from speakerctl.app.context import open_store
from speakerctl.broker.ports import free_port
from speakerctl.clock import FixedClock
from speakerctl.config import Integrations, PublicFeedSettings, Settings, WebhookSettings
from speakerctl.controller.health import HealthPolicy
from speakerctl.controller.service import Controller
from speakerctl.integrations.http import HttpClient
from speakerctl.integrations.signing import HEADER, sign, verify
from speakerctl.integrations.webhooks import WebhookSender
from speakerctl.store import AlertFinding, BroadcastState, DeliveryStatus, DeliveryUpdate, Store
from speakerctl.web import WebServer

NOW = datetime(2026, 11, 29, 6, 0, tzinfo=UTC)
COMMUNE = "st-ke-sach-an-my"
DEV, OTHER = "st-ke-sach-an-my-01", "st-ke-sach-an-my-02"
SECRET = "whsec-thu-nghiem"


@dataclass
class Receiver:
    """A webhook receiver that checks every signature and answers 500 to its first `failures` posts."""

    clock: FixedClock
    failures: int = 0
    attempts: int = 0
    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    bad_signatures: int = 0
    port: int = field(default_factory=free_port)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.attempts += 1
        now = int(self.clock.now().timestamp())
        if not verify(SECRET.encode(), request.headers.get(HEADER, ""), body, now):
            self.bad_signatures += 1
            return web.Response(status=400)
        if self.failures > 0:
            self.failures -= 1
            return web.Response(status=500, text="receiver down")
        self.events.setdefault(request.headers["Idempotency-Key"], await request.json())
        assert request.headers["Speakerctl-Event"] == self.events[request.headers["Idempotency-Key"]]["type"]
        return web.Response(status=204)


def _aired(store: Store) -> None:
    """Bulletin 'Bản tin sáng' by 'bien-tap-vien', played on DEV, failed on OTHER, ended at NOW."""
    bulletin = store.bulletins.add("Bản tin sáng", "ab" * 32, "opus", "ogg", 24, 60_000, 180_000,
                                   "ban-tin.mp3", "bien-tap-vien", NOW)  # fmt: skip
    start = NOW - timedelta(minutes=2)
    store.broadcasts.create("bc-sang", bulletin.id, 1, [COMMUNE], [DEV, OTHER], start, start, NOW)
    t = int(start.timestamp() * 1000)
    store.deliveries.apply(
        [
            DeliveryUpdate("bc-sang", DEV, DeliveryStatus.PLAYING, None, "", t + 1_000),
            DeliveryUpdate("bc-sang", DEV, DeliveryStatus.FINISHED, None, "", t + 61_000),
            DeliveryUpdate("bc-sang", OTHER, DeliveryStatus.FAILED, "amplifier_fault", "", t + 900),
        ]
    )
    store.broadcasts.finish("bc-sang", BroadcastState.COMPLETE, NOW)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """One airing, and an offline alert opened then closed."""
    found = open_store(Settings(data_dir=tmp_path / "data"))
    _aired(found)
    found.alerts.sync([AlertFinding("offline", OTHER, "no status for 12 min")], {"offline"}, NOW)
    found.alerts.sync([], {"offline"}, NOW + timedelta(minutes=5))
    yield found
    found.close()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """The receiver, listening on loopback."""
    found = Receiver(FixedClock(NOW + timedelta(minutes=10)))
    app = web.Application()
    app.router.add_post("/hooks/speakerctl", found.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", found.port).start()
    yield found
    await runner.cleanup()


async def test_webhooks_are_signed_retried_after_500s_and_sent_once(store: Store, receiver: Receiver) -> None:
    clock = receiver.clock
    settings = WebhookSettings("ubnd-xa", f"http://127.0.0.1:{receiver.port}/hooks/speakerctl", secret=SECRET)
    receiver.failures = 2
    async with HttpClient(5) as http:
        sender = WebhookSender(store, settings, clock, http)
        assert await sender.collect() == 4
        for _ in range(3):
            done = await sender.deliver()
            if done.held_until is not None:
                assert (await sender.deliver()).held_until == done.held_until  # no attempt while waiting
                clock.advance(done.held_until - clock.now())
        assert await sender.collect() == 0  # read again: already in the outbox
    assert done.delivered == 4 and receiver.attempts == 6 and receiver.bad_signatures == 0
    assert set(receiver.events) == {
        "broadcast.finished:bc-sang", "alert.opened:1", "cluster.offline:1", "alert.closed:1",
    }  # fmt: skip
    finished = receiver.events["broadcast.finished:bc-sang"]
    assert finished["data"]["title"] == "Bản tin sáng" and finished["data"]["state"] == "complete"
    assert receiver.events["alert.closed:1"]["data"]["closed_at"] == "2026-11-29T06:05:00+00:00"


def test_the_signature_scheme_refuses_a_changed_body_another_secret_and_an_old_timestamp() -> None:
    body, at = b'{"type":"alert.opened"}', 1_795_000_000
    header = sign([SECRET.encode()], body, at)
    assert header.startswith(f"t={at},v1=") and verify(SECRET.encode(), header, body, at + 10)
    assert not verify(SECRET.encode(), header, body + b" ", at)
    assert not verify(b"another", header, body, at)
    assert not verify(SECRET.encode(), header, body, at + 301)
    rotating = sign([b"old", SECRET.encode()], body, at)
    assert verify(SECRET.encode(), rotating, body, at) and verify(b"old", rotating, body, at)


async def test_the_public_feed_answers_json_and_rss_without_sign_in(store: Store, tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path / "data", integrations=Integrations(public_feed=PublicFeedSettings())
    )
    server = WebServer(Controller(settings, store, FixedClock(NOW)), HealthPolicy.from_settings(settings),
                       "127.0.0.1", 0)  # fmt: skip
    await server.start()
    base = f"{server.url}public/v1/zones/{COMMUNE}/aired"
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(base + ".json") as response:
                assert response.status == 200 and response.headers["Cache-Control"] == "public, max-age=60"
                feed, tag = await response.json(), response.headers["ETag"]
            async with http.get(base + ".json", headers={"If-None-Match": tag}) as response:
                assert response.status == 304
            async with http.get(base + ".rss") as response:
                assert response.status == 200 and response.content_type == "application/rss+xml"
                rss = ElementTree.fromstring(await response.read())
            async with http.get(f"{server.url}public/v1/zones/nowhere/aired.json") as response:
                assert response.status == 404
    finally:
        await server.stop()
    (item,) = feed["items"]
    assert (item["id"], item["title"], item["priority"], item["clusters"]) == (
        "bc-sang",
        "Bản tin sáng",
        "normal",
        1,
    )
    assert (
        item["author"] is None
        and item["started_at"] == "2026-11-29T05:58:01+00:00"
        and feed["name"] == "An Mỹ"
    )
    (entry,) = rss.findall("./channel/item")
    assert (
        entry.findtext("title") == "Bản tin sáng"
        and entry.findtext("pubDate") == "Sun, 29 Nov 2026 05:58:01 GMT"
    )
    assert entry.find("{http://purl.org/dc/elements/1.1/}creator") is None  # no names unless configured
    shown = publicfeed.aired(store, PublicFeedSettings(show_authors=True), "st-ke-sach", NOW)
    assert [i.author for i in shown.items] == ["bien-tap-vien"]  # the district sees its commune's airing
