"""CAP 1.2 end to end on a real Mosquitto and the simulated small fleet: an emergency for an area airs
on exactly the clusters inside it, repeats until it expires, and its Cancel withdraws it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp import web
from cap_docs import alert, circle_area, polygon_area, reference
from fleet_small import inventory
from waiting import wait_until

from simulator.fleet import Fleet, FleetOptions
from speakerctl.app import cap, cap_feed, reports
from speakerctl.app.context import AppContext
from speakerctl.app.runtime import running_controller
from speakerctl.clock import SystemClock
from speakerctl.config import Settings
from speakerctl.controller.service import Controller
from speakerctl.errors import NotFound
from speakerctl.fleet import load_inventory, provisioning_records
from speakerctl.protocol import Priority
from speakerctl.security.keys import load_or_create_signer, trusted_path
from speakerctl.store import Store


def _playing(store: Store, broadcast: str) -> bool:
    """Whether a cluster plays the broadcast (not recorded yet: not yet)."""
    try:
        return any(d.state == "playing" for d in store.deliveries.of(broadcast))
    except NotFound:
        return False


INSIDE = {"c1-01", "c1-02", "c2-01", "c2-02"}


class SteppedClock:
    """The real time plus an offset the test moves on: repeats come due without waiting for them."""

    def __init__(self) -> None:
        self.offset = timedelta()
        self.start = datetime.now(UTC).replace(microsecond=0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def monotonic(self) -> float:
        return SystemClock().monotonic() + self.offset.total_seconds()

    def advance(self, delta: timedelta) -> None:
        self.offset += delta


@dataclass
class Rig:
    """The small fleet online, a running controller and the CAP desk on a stepped clock."""

    fleet: Fleet
    desk: cap.Desk
    clock: SteppedClock
    controller: Controller
    feed: dict[str, bytes]
    """What the feed server started for the test lists (name → CAP document), at `cap_feed_url`."""

    def played(self) -> dict[str, int]:
        return {k: len(d.output.played) for k, d in self.fleet.devices.items() if d.output.played}


@contextlib.asynccontextmanager
async def feed_server(documents: dict[str, bytes]) -> AsyncIterator[str]:
    """An Atom index of `documents` (read at each request) and the documents, on a free loopback port."""

    async def index(_: web.Request) -> web.Response:
        entries = "".join(
            f'<entry><link type="application/cap+xml" href="cap/{n}"/></entry>' for n in documents
        )
        body = f'<feed xmlns="http://www.w3.org/2005/Atom"><title>NCHMF</title>{entries}</feed>'
        return web.Response(text=body, content_type="application/atom+xml")

    async def document(request: web.Request) -> web.Response:
        return web.Response(body=documents[request.match_info["name"]], content_type="application/cap+xml")

    app = web.Application()
    app.router.add_get("/feed.xml", index)
    app.router.add_get("/cap/{name}", document)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/feed.xml"
    finally:
        await runner.cleanup()


@pytest.fixture
async def rig(mosquitto: object, tmp_path: Path) -> AsyncIterator[Rig]:
    path = inventory(tmp_path / "fleet.json")
    documents: dict[str, bytes] = {}
    async with feed_server(documents) as url:
        async for built in _rig(mosquitto, tmp_path, path, url, documents):
            yield built


async def _rig(
    mosquitto: object, tmp_path: Path, path: Path, url: str, documents: dict[str, bytes]
) -> AsyncIterator[Rig]:
    settings = Settings(
        data_dir=tmp_path / "controller",
        broker=str(mosquitto.url),  # type: ignore[attr-defined]
        inventory=str(path),
        accept_window_s=1.0,
        broadcast_timeout_s=60,
        cap_repeat_min=15,
        cap_feed_url=url,
        cap_poll_s=0.2,
        cap_test_zone="c1",
    )
    load_or_create_signer(settings.keys_dir)
    options = FleetOptions(root=tmp_path / "fleet", time_scale=4, trust_file=trusted_path(settings.keys_dir))
    fleet = Fleet(provisioning_records(load_inventory(path)), settings.broker_address, options)
    clock = SteppedClock()
    ctx = AppContext(settings, clock)
    ctx.store().close()  # loads the inventory
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(fleet.run())
        await fleet.wait_online(30)
        async with (
            running_controller(AppContext(settings, SystemClock())) as controller,
            cap.Desk(ctx, controller).running() as desk,
        ):
            yield Rig(fleet, desk, clock, controller, documents)
        task.cancel()


async def test_an_emergency_airs_inside_its_polygon_repeats_until_expiry(rig: Rig) -> None:
    sent = rig.clock.start
    doc = alert("LQ-2026-001", sent, expires=sent + timedelta(minutes=40), area=polygon_area())
    view = await rig.desk.receive(doc, "test-feed")
    assert (view.state, view.priority, set(view.targets)) == ("airing", "emergency", INSIDE)
    await rig.desk.idle()
    assert rig.played() == dict.fromkeys(INSIDE, 1)
    for n in (2, 3):
        rig.clock.advance(timedelta(minutes=15))
        assert await rig.desk.tick() == 1
        await rig.desk.idle()
        assert rig.played() == dict.fromkeys(INSIDE, n)
    rig.clock.advance(timedelta(minutes=15))  # 45 min: past expiry
    assert await rig.desk.tick() == 0
    (stored,) = cap.list_alerts(rig.desk.ctx)
    assert stored.state == "expired" and len(stored.broadcasts) == 3
    ctx = rig.desk.ctx
    assert {reports.broadcast_report(ctx, b).view.cap for b in stored.broadcasts} == {"LQ-2026-001"}
    since = (sent - timedelta(days=1)).date().isoformat()
    plays = reports.play_log(ctx, since, None, None).views()
    assert len(plays) == 12 and {p.cap for p in plays} == {"LQ-2026-001"}
    assert (await rig.desk.receive(doc, "again")).duplicate


async def test_a_cancel_stops_what_is_on_air_and_ends_the_repeats(rig: Rig) -> None:
    sent = rig.clock.start
    doc = alert("LQ-2026-002", sent, expires=sent + timedelta(hours=2), area=circle_area())
    view = await rig.desk.receive(doc, "test-feed")
    assert set(view.targets) == {"c3-01", "c3-02"}
    store = rig.desk.store
    (broadcast,) = store.cap.airings(view.id)
    await wait_until(lambda: _playing(store, broadcast), "the alert on air")
    cancel = alert(
        "LQ-2026-002-huy",
        sent + timedelta(seconds=1),
        msg_type="Cancel",
        references=reference("LQ-2026-002", sent),
    )
    done = await rig.desk.receive(cancel, "test-feed")
    assert done.state == "applied"
    await rig.desk.idle()
    assert store.broadcasts.get(broadcast).state.value == "stopped"
    assert store.cap.get(view.id).state == "cancelled" and store.cap.get(view.id).next_air_at is None
    rig.clock.advance(timedelta(minutes=15))
    assert await rig.desk.tick() == 0
    assert all(len(d.output.played) == 0 for d in rig.fleet.devices.values())


async def test_an_update_replaces_its_alert_on_air(rig: Rig) -> None:
    sent = rig.clock.start
    first = await rig.desk.receive(
        alert("BAO-7", sent, expires=sent + timedelta(hours=1), area=polygon_area()), "test-feed"
    )
    await rig.desk.idle()
    update = alert(
        "BAO-7b",
        sent + timedelta(minutes=1),
        msg_type="Update",
        references=reference("BAO-7", sent),
        expires=sent + timedelta(hours=1),
        area=circle_area(),
    )
    second = await rig.desk.receive(update, "test-feed")
    await rig.desk.idle()
    assert rig.desk.store.cap.get(first.id).state == "replaced"
    assert (second.state, set(second.targets)) == ("airing", {"c3-01", "c3-02"})
    rig.clock.advance(timedelta(minutes=15))
    assert await rig.desk.tick() == 1  # the update only
    await rig.desk.idle()
    assert rig.played() == dict.fromkeys(INSIDE, 1) | {"c3-01": 2, "c3-02": 2}


async def test_serve_polls_the_feed_and_airs_what_it_brings(rig: Rig) -> None:
    sent = rig.clock.start
    rig.feed["lq.xml"] = alert("LQ-FEED-1", sent, expires=sent + timedelta(hours=1), area=circle_area())
    async with cap_feed.watching(rig.controller):
        await wait_until(lambda: rig.played() == {"c3-01": 1, "c3-02": 1}, "the feed's alert aired in c3")
    (stored,) = cap.list_alerts(rig.desk.ctx)
    assert stored.identifier == "LQ-FEED-1" and stored.source.endswith("/cap/lq.xml")


async def test_a_test_alert_rehearses_once_in_the_test_zone_only(rig: Rig) -> None:
    sent = rig.clock.start
    doc = alert("THU-9", sent, status="Test", expires=sent + timedelta(hours=1), area=polygon_area())
    view = await rig.desk.receive(doc, "test-feed")
    assert (view.state, view.targets) == ("rehearsal", ["c1"])
    await rig.desk.idle()
    assert rig.played() == {"c1-01": 1, "c1-02": 1}
    (broadcast,) = rig.desk.store.cap.airings(view.id)
    assert rig.desk.store.broadcasts.get(broadcast).priority is Priority.NORMAL  # never the emergency volume
    rig.clock.advance(timedelta(minutes=15))
    assert await rig.desk.tick() == 0
