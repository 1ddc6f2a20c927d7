"""The CAP feed over real HTTP: an aiohttp server started by the test serves an Atom index and CAP
documents written for the tests; the poller hands them to the desk, which follows the CAP rules."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from cap_docs import BILLION_LAUGHS, MALFORMED, alert, circle_area, geocode_area, polygon_area, reference
from fleet_small import NOW, context

from speakerctl.app import cap
from speakerctl.app.cap_feed import FeedPoller
from speakerctl.app.runtime import controller
from speakerctl.cap import default_rules
from speakerctl.store import ItemState

MILD = {"severity": "Moderate", "urgency": "Expected", "certainty": "Likely", "risk_level": 2}
DOCUMENTS: dict[str, bytes] = {
    "1.xml": alert("MUA-1", NOW, expires=NOW + timedelta(hours=6), area=polygon_area(), **MILD),  # type: ignore[arg-type]
    "2.xml": alert(
        "MUA-2",
        NOW + timedelta(minutes=5),
        msg_type="Update",
        references=reference("MUA-1", NOW),
        expires=NOW + timedelta(hours=6),
        area=circle_area(),
        severity="Severe",
        urgency="Expected",
        certainty="Likely",
        risk_level=3,
    ),
    "3.xml": alert(
        "MUA-3",
        NOW + timedelta(minutes=9),
        msg_type="Cancel",
        references=reference("MUA-2", NOW + timedelta(minutes=5)),
    ),
    "old.xml": alert("CU-1", NOW - timedelta(days=1), expires=NOW - timedelta(hours=1), area=polygon_area()),
    "test.xml": alert("THU-1", NOW, status="Test", expires=NOW + timedelta(hours=1), area=polygon_area()),
    "geo.xml": alert("GEO-1", NOW, expires=NOW + timedelta(hours=1), area=geocode_area(), **MILD),  # type: ignore[arg-type]
    "bad.xml": MALFORMED,
    "thu-huy.xml": alert(
        "THU-HUY",
        NOW + timedelta(minutes=2),
        status="Test",
        msg_type="Cancel",
        references=reference("GEO-1", NOW),
    ),
    "lol.xml": BILLION_LAUGHS,
    "huge.xml": b"<alert>" + b"x" * 600_000 + b"</alert>",
}


def atom(names: list[str]) -> bytes:
    entries = "".join(
        f'<entry><id>urn:{n}</id><title>{n}</title><link type="application/cap+xml" href="cap/{n}"/></entry>'
        for n in names
    )
    return f'<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>{entries}</feed>'.encode()


@pytest.fixture
async def feed() -> AsyncIterator[tuple[str, list[str]]]:
    """A feed server on a free loopback port; the list is what its index names (the test adds to it)."""
    listed: list[str] = []

    async def index(_: web.Request) -> web.Response:
        return web.Response(body=atom(listed), content_type="application/atom+xml")

    async def document(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in DOCUMENTS:
            raise web.HTTPInternalServerError()
        return web.Response(body=DOCUMENTS[name], content_type="application/cap+xml")

    app = web.Application()
    app.router.add_get("/feed.xml", index)
    app.router.add_get("/cap/{name}", document)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/feed.xml", listed
    finally:
        await runner.cleanup()


async def test_the_feed_follows_the_cap_rules(feed: tuple[str, list[str]], tmp_path: Path) -> None:
    url, listed = feed
    ctx = context(tmp_path)
    rules = default_rules()
    rules = rules.__class__(rules.rules, rules.risk_parameters, {("VN-ADM", "31471"): "c2"})
    async with cap.Desk(ctx, controller(ctx), rules).running() as desk, aiohttp.ClientSession() as http:
        poller = FeedPoller(desk, url, http)
        listed += ["1.xml", "old.xml", "test.xml", "geo.xml", "bad.xml", "lol.xml", "huge.xml", "broken.xml"]
        polled = await poller.poll()
        assert (polled.fetched, polled.new, polled.rejected, polled.failed) == (7, 4, 3, 1)
        states = {a.identifier: a for a in cap.list_alerts(ctx)}
        assert states["MUA-1"].state == "queued" and states["MUA-1"].priority == "normal"
        assert set(states["MUA-1"].targets) == {"c1-01", "c1-02", "c2-01", "c2-02"}
        assert states["CU-1"].state == "expired"
        assert states["THU-1"].state == "rehearsal" and states["THU-1"].broadcasts == []
        assert states["GEO-1"].targets == ["c2"]
        again = await poller.poll()  # nothing new: only the document that failed is tried again
        assert (again.fetched, again.failed) == (0, 1)

        listed.append("2.xml")
        assert (await poller.poll()).new == 1
        states = {a.identifier: a for a in cap.list_alerts(ctx)}
        assert states["MUA-1"].state == "replaced"
        assert (states["MUA-2"].state, states["MUA-2"].priority, states["MUA-2"].risk_level) == (
            "queued",
            "priority",
            3,
        )
        store = ctx.store()
        pending = store.approvals.all(states=[ItemState.PENDING])
        assert {i.bulletin_id for i in pending} == {states["MUA-2"].bulletin, states["GEO-1"].bulletin}

        listed += ["3.xml", "thu-huy.xml"]  # a Test Cancel of an Actual alert withdraws nothing
        await poller.poll()
        states = {a.identifier: a for a in cap.list_alerts(ctx)}
        assert (states["MUA-2"].state, states["MUA-3"].state) == ("cancelled", "applied")
        assert states["GEO-1"].state == "queued"
        assert {i.bulletin_id for i in store.approvals.all(states=[ItemState.PENDING])} == {
            states["GEO-1"].bulletin
        }


async def test_an_unreachable_feed_is_logged_not_fatal(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ctx = context(tmp_path)
    async with cap.Desk(ctx, controller(ctx)).running() as desk, aiohttp.ClientSession() as http:
        polled = await FeedPoller(desk, "http://127.0.0.1:9/feed.xml", http).poll()
    assert polled.failed == 1 and "unreadable" in caplog.text
