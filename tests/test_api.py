"""/api/v1 in-process on a real port: bearer tokens, the console's access rule, JSON refusals, the
schedule lifecycle, the unversioned paths kept; and docs/openapi.json is what the code generates."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cap_docs import MALFORMED, alert, circle_area, polygon_area
from fleet_small import COMMUNE, NOW, OTHER, PROVINCE, context
from typer.testing import CliRunner

from speakerctl import main as entry
from speakerctl.app import accounts, tokens
from speakerctl.app.access import local_administrator
from speakerctl.cli.main import app
from speakerctl.controller.health import HealthPolicy
from speakerctl.controller.service import Controller
from speakerctl.web import WebServer, openapi_text

DOCS = Path(__file__).parent.parent / "docs"
PASSWORD = "một mật khẩu dài"


def test_the_committed_openapi_document_is_the_generated_one() -> None:
    assert (DOCS / "openapi.json").read_text(encoding="utf-8") == openapi_text(), (
        "regenerate it: speakerctl api openapi > docs/openapi.json"
    )


def test_speakerctl_api_openapi_prints_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(entry.state, "openapi", openapi_text)
    result = CliRunner().invoke(app, ["api", "openapi"])
    assert result.exit_code == 0 and json.loads(result.output)["openapi"] == "3.1.0"


@dataclass
class Api:
    """The server, an HTTP session, and tokens of an administrator and of a commune operator."""

    url: str
    http: aiohttp.ClientSession
    admin: str
    operator: str
    viewer: str

    async def call(
        self, method: str, path: str, token: str | None, body: Any = None, lang: str = ""
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        headers |= {"Accept-Language": lang} if lang else {}
        async with self.http.request(method, self.url + path, json=body, headers=headers) as r:
            text = await r.text()
            return r.status, json.loads(text) if text else None

    async def post_xml(
        self, path: str, token: str, body: bytes, kind: str = "application/cap+xml"
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}", "Content-Type": kind}
        async with self.http.post(self.url + path, data=body, headers=headers) as r:
            return r.status, await r.json()


@pytest.fixture
async def api(tmp_path: Path, db_url: str) -> AsyncIterator[Api]:
    ctx = context(tmp_path, db_url)
    admin = local_administrator()
    users = (("quan-tri", "administrator", None), ("lan", "operator", COMMUNE), ("xem", "viewer", COMMUNE))
    for name, role, zone in users:
        accounts.create_user(ctx, accounts.NewUser(name, role, zone, PASSWORD), actor=admin)
    made = [tokens.create(ctx, name, actor=admin).token for name, _role, _zone in users]
    store = ctx.store()
    store.bulletins.add("Bản tin", "ab" * 32, "opus", "ogg", 24, 60_000, 180_000, "a.mp3", "admin", NOW)
    controller = Controller(ctx.settings, store, ctx.clock)
    server = WebServer(controller, HealthPolicy.from_settings(ctx.settings), "127.0.0.1", 0)
    await server.start()
    try:
        async with aiohttp.ClientSession() as http:
            yield Api(f"http://127.0.0.1:{server.port}/", http, made[0], made[1], made[2])
    finally:
        await server.stop()
        store.close()


async def test_without_a_valid_token_the_api_answers_401_in_json(api: Api) -> None:
    status, body = await api.call("GET", "api/v1/devices", None)
    assert status == 401 and body["error"] == "no API token"
    status, body = await api.call("GET", "api/v1/devices", "spk_not-a-token")
    assert status == 401 and "unknown or revoked" in body["error"]
    status, body = await api.call("GET", "api/v1/openapi.json", None)
    assert status == 200 and body["info"]["version"].startswith("1.")


async def test_a_token_acts_as_its_user_within_their_zone(api: Api) -> None:
    status, who = await api.call("GET", "api/v1/whoami", api.operator)
    assert (status, who["user"], who["zone"]) == (200, "lan", COMMUNE)
    _, mine = await api.call("GET", "api/v1/devices", api.operator)
    _, every = await api.call("GET", "api/v1/devices", api.admin)
    assert {d["zone"] for d in mine} == {COMMUNE} and len(every) == 6
    status, body = await api.call("GET", f"api/v1/devices?zone={OTHER}", api.operator)
    assert status == 403 and "acts on c1 only" in body["error"]
    status, _ = await api.call("GET", f"api/v1/devices/{OTHER}-01", api.operator)
    assert status == 403
    _, fleet = await api.call("GET", "api/v1/fleet", api.operator)
    assert {z["id"] for z in fleet["zones"]} == {COMMUNE} and fleet["totals"]["offline"] == 2


async def test_the_unversioned_paths_still_answer_and_name_their_successor(api: Api) -> None:
    async with api.http.get(api.url + "api/devices") as r:
        assert r.status == 200 and r.headers["Deprecation"] == "@1796169600"
        assert r.headers["Link"] == '</api/v1/devices>; rel="successor-version"'
        legacy = await r.json()
    assert legacy == (await api.call("GET", "api/v1/devices", api.admin))[1]


async def test_refusals_are_json_with_the_console_s_statuses(api: Api) -> None:
    body = {"bulletin": 1, "targets": [OTHER]}
    status, answer = await api.call("POST", "api/v1/broadcasts", api.operator, body)
    assert status == 403 and answer["hint"]
    _, vietnamese = await api.call("POST", "api/v1/broadcasts", api.operator, body, lang="vi-VN,vi;q=0.9")
    assert vietnamese["error"] != answer["error"] and "c1" in vietnamese["error"]
    status, answer = await api.call(
        "POST", "api/v1/broadcasts", api.admin, {"bulletin": 99, "targets": [OTHER]}
    )
    assert status == 404
    status, answer = await api.call("POST", "api/v1/broadcasts", api.admin, {"bulletin": True, "targets": []})
    assert status == 400 and answer["error"].startswith("bulletin:")
    province = {"bulletin": 1, "targets": [PROVINCE], "priority": "emergency"}
    status, answer = await api.call("POST", "api/v1/broadcasts", api.admin, province)
    assert status == 409
    async with api.http.post(
        api.url + "api/v1/broadcasts", data=b"{", headers={"Authorization": f"Bearer {api.admin}"}
    ) as r:
        assert r.status == 400 and "not JSON" in (await r.json())["error"]


async def test_a_schedule_is_added_paused_and_removed_or_held_for_approval(api: Api) -> None:
    body = {"bulletin": 1, "targets": [COMMUNE], "rule": {"kind": "daily", "times": "05:00,17:00"}}
    status, added = await api.call("POST", "api/v1/schedules", api.admin, body)
    assert status == 201 and added["next_at"] and added["overlaps"] == []
    status, paused = await api.call("POST", f"api/v1/schedules/{added['id']}/pause", api.admin)
    assert status == 200 and paused["paused"] is True
    _, listed = await api.call("GET", "api/v1/schedules", api.operator)
    assert [s["id"] for s in listed] == [added["id"]]
    assert (await api.call("DELETE", f"api/v1/schedules/{added['id']}", api.admin))[0] == 204
    assert (await api.call("GET", f"api/v1/schedules/{added['id']}", api.admin))[0] == 404
    status, held = await api.call("POST", "api/v1/schedules", api.operator, body)
    assert status == 202 and held["broadcast"] is None and len(held["items"]) == 1
    _, queue = await api.call("GET", "api/v1/approvals", api.admin)
    assert [(i["id"], i["kind"], i["submitted_by"]) for i in queue] == [(held["items"][0], "schedule", "lan")]


def _cap(identifier: str, area: str) -> bytes:
    """A CAP alert of moderate severity for `area`: it waits for approval rather than airing."""
    return alert(
        identifier,
        NOW,
        expires=NOW + timedelta(hours=3),
        area=area,
        severity="Moderate",
        urgency="Expected",
        certainty="Likely",
        risk_level=2,
    )


async def test_a_cap_alert_posted_with_a_token_is_taken_once_and_refused_when_invalid(api: Api) -> None:
    mild = _cap("API-1", polygon_area())
    status, taken = await api.post_xml("api/v1/cap/alerts", api.admin, mild)
    assert (status, taken["state"], taken["duplicate"]) == (201, "queued", False)
    assert taken["source"] == "api:quan-tri" and set(taken["targets"]) == {"c1-01", "c1-02", "c2-01", "c2-02"}
    status, again = await api.post_xml("api/v1/cap/alerts", api.admin, mild, "application/xml")
    assert (status, again["id"], again["duplicate"]) == (200, taken["id"], True)
    status, refused = await api.post_xml("api/v1/cap/alerts", api.admin, MALFORMED)
    assert status == 422 and "not well-formed" in refused["error"]
    status, refused = await api.post_xml("api/v1/cap/alerts", api.admin, b"<a/>" * 200_000)
    assert status == 422 and "at most" in refused["error"]
    status, refused = await api.post_xml("api/v1/cap/alerts", api.admin, mild, "text/plain")
    assert status == 415 and "application/cap+xml" in refused["hint"]
    for document in (_cap("API-2", circle_area()), alert("API-2", NOW, status="Test")):
        status, refused = await api.post_xml("api/v1/cap/alerts", api.viewer, document)
        assert status == 403 and refused["hint"]  # not even a rehearsal is stored for a viewer
    status, refused = await api.post_xml("api/v1/cap/alerts", api.operator, _cap("API-3", polygon_area()))
    assert status == 403 and "c2" in refused["error"]  # it reaches beyond the operator's commune


async def test_cap_alerts_are_listed_newest_first_within_the_user_s_zones(api: Api) -> None:
    for identifier, area in (("API-4", polygon_area()), ("API-5", circle_area())):
        assert (await api.post_xml("api/v1/cap/alerts", api.admin, _cap(identifier, area)))[0] == 201
    status, every = await api.call("GET", "api/v1/cap/alerts", api.admin)
    assert status == 200 and [a["identifier"] for a in every] == ["API-5", "API-4"]
    assert [a["identifier"] for a in (await api.call("GET", "api/v1/cap/alerts?limit=1", api.admin))[1]] == [
        "API-5"
    ]
    _, mine = await api.call("GET", "api/v1/cap/alerts", api.operator)
    assert [a["identifier"] for a in mine] == ["API-4"]  # API-5 is for c3 only
    assert (await api.call("GET", "api/v1/cap/alerts", api.viewer))[1] == mine


def test_the_document_describes_cap_and_the_public_feed() -> None:
    paths = json.loads((DOCS / "openapi.json").read_text(encoding="utf-8"))["paths"]
    posted = paths["/api/v1/cap/alerts"]["post"]
    assert set(posted["requestBody"]["content"]) == {"application/cap+xml", "application/xml"}
    assert {"200", "201", "403", "415", "422"} <= set(posted["responses"])
    feed = paths["/public/v1/zones/{zone}/aired.json"]["get"]
    assert feed["security"] == [] and "application/json" in feed["responses"]["200"]["content"]
    rss = paths["/public/v1/zones/{zone}/aired.rss"]["get"]
    assert rss["security"] == [] and list(rss["responses"]["200"]["content"]) == ["application/rss+xml"]
