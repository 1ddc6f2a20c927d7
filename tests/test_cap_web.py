"""CAP by HTTP POST to the console: signed in and CSRF-checked like every console action, refused
with 422 and its reason when the document is invalid or hostile, 403 for a user who may not broadcast."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest
from cap_docs import BILLION_LAUGHS, alert, polygon_area
from fleet_small import NOW, PROVINCE, context

from speakerctl.app import runtime
from speakerctl.app.access import local_administrator
from speakerctl.app.accounts import NewUser, create_user
from speakerctl.controller.health import HealthPolicy
from speakerctl.web import WebServer

PASSWORD = "mat-khau-dai-du-16"
MILD = alert(
    "WEB-1",
    NOW,
    expires=NOW + timedelta(hours=3),
    area=polygon_area(),
    severity="Moderate",
    urgency="Expected",
    certainty="Likely",
    risk_level=2,
)


@pytest.fixture
async def url(tmp_path: Path) -> AsyncIterator[str]:
    ctx = context(tmp_path)
    for name, role in (("tinh-op", "operator"), ("tinh-xem", "viewer")):
        await asyncio.to_thread(
            create_user, ctx, NewUser(name, role, PROVINCE, PASSWORD), actor=local_administrator()
        )
    controller = runtime.controller(ctx)
    server = WebServer(controller, HealthPolicy.from_settings(ctx.settings), "127.0.0.1", 0)
    await server.start()
    try:
        yield server.url
    finally:
        await server.stop()
        controller.store.close()


async def _signed_in(http: aiohttp.ClientSession, url: str, name: str) -> str:
    """Sign in; the CSRF token the console's pages carry for scripts and htmx."""
    async with http.get(url + "login") as r:
        found = re.search(r'name="csrf" value="([^"]+)"', await r.text())
    assert found is not None
    form = {"csrf": found.group(1), "name": name, "password": PASSWORD, "next": "/"}
    async with http.post(url + "login", data=form) as r:
        page = await r.text()
    token = re.search(r'"X-CSRF-Token": "([^"]+)"', page)
    assert token is not None
    return token.group(1)


async def _post(http: aiohttp.ClientSession, url: str, body: bytes, csrf: str) -> tuple[int, str]:
    headers = {"Content-Type": "application/cap+xml", "X-CSRF-Token": csrf}
    async with http.post(url + "cap/alerts", data=body, headers=headers) as r:
        return r.status, await r.text()


async def test_post_takes_an_alert_refuses_hostile_xml_and_strangers(url: str) -> None:
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as http:
        csrf = await _signed_in(http, url, "tinh-op")
        status, text = await _post(http, url, MILD, csrf)
        assert status == 201 and '"state": "queued"' in text.replace('":"', '": "')
        assert (await _post(http, url, MILD, csrf))[0] == 200  # a duplicate
        status, text = await _post(http, url, BILLION_LAUGHS, csrf)
        assert status == 422 and "DTD" in text
        assert (await _post(http, url, MILD, "forged"))[0] == 403
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        csrf = await _signed_in(http, url, "tinh-xem")
        status, text = await _post(http, url, MILD.replace(b"WEB-1", b"WEB-2"), csrf)
        assert status == 403
