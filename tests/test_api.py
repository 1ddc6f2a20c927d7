"""/api/v1 in-process on a real port: bearer tokens, the console's access rule, JSON refusals, the
schedule lifecycle, the unversioned paths kept; and docs/openapi.json is what the code generates."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
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

    async def call(
        self, method: str, path: str, token: str | None, body: Any = None, lang: str = ""
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        headers |= {"Accept-Language": lang} if lang else {}
        async with self.http.request(method, self.url + path, json=body, headers=headers) as r:
            text = await r.text()
            return r.status, json.loads(text) if text else None


@pytest.fixture
async def api(tmp_path: Path, db_url: str) -> AsyncIterator[Api]:
    ctx = context(tmp_path, db_url)
    admin = local_administrator()
    for name, role, zone in (("quan-tri", "administrator", None), ("lan", "operator", COMMUNE)):
        accounts.create_user(ctx, accounts.NewUser(name, role, zone, PASSWORD), actor=admin)
    made = [tokens.create(ctx, name, actor=admin).token for name in ("quan-tri", "lan")]
    store = ctx.store()
    store.bulletins.add("Bản tin", "ab" * 32, "opus", "ogg", 24, 60_000, 180_000, "a.mp3", "admin", NOW)
    controller = Controller(ctx.settings, store, ctx.clock)
    server = WebServer(controller, HealthPolicy.from_settings(ctx.settings), "127.0.0.1", 0)
    await server.start()
    try:
        async with aiohttp.ClientSession() as http:
            yield Api(f"http://127.0.0.1:{server.port}/", http, made[0], made[1])
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
