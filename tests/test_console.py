"""The operator console in a real headless Chromium, driven by Playwright with real clicks.

A real Mosquitto, six simulated clusters in three communes (tests/fleet_small.py), a controller with its
web server; users of one commune sign in, broadcast, watch the progress arrive over server-sent events,
stop, acknowledge, are refused outside their zone, and switch the language.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from simulator.fleet import Fleet, FleetOptions
from speakerctl.app import runtime
from speakerctl.app.access import local_administrator
from speakerctl.app.accounts import NewUser, create_user
from speakerctl.app.bulletins import import_bulletin
from speakerctl.audio import generate_tone
from speakerctl.broker.mosquitto import MosquittoProcess
from speakerctl.clock import SystemClock
from speakerctl.config import Settings
from speakerctl.controller.service import Controller
from speakerctl.fleet import load_inventory, provisioning_records
from speakerctl.security.keys import trusted_path
from speakerctl.web import front_end
from tests import fleet_small

REQUIRE_CHROMIUM = "SPEAKERCTL_REQUIRE_CHROMIUM"
PASSWORD = "mat-khau-du-dai-1"
TIMEOUT_MS = 15_000


@dataclass
class Desk:
    """A small fleet, its controller and console, and one bulletin in the library."""

    fleet: Fleet
    controller: Controller
    url: str
    bulletin_id: int
    long_bulletin_id: int


def _chromium() -> str:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        if os.environ.get(REQUIRE_CHROMIUM) == "1":
            pytest.fail(f"chromium is not installed, and {REQUIRE_CHROMIUM}=1 requires it", pytrace=False)
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return binary


def _users(settings: Settings) -> None:
    ctx = runtime.context(settings)
    admin = local_administrator()
    for name, role, zone in (
        ("xa1", "approver", fleet_small.COMMUNE),
        ("xem1", "viewer", fleet_small.COMMUNE),
    ):
        create_user(ctx, NewUser(name, role, zone, PASSWORD), actor=admin)


@pytest.fixture
async def desk(mosquitto: MosquittoProcess, tmp_path: Path) -> AsyncIterator[Desk]:
    inventory = fleet_small.inventory(tmp_path / "fleet.json")
    settings = Settings(
        data_dir=tmp_path / "controller", broker=mosquitto.url, inventory=str(inventory), accept_window_s=1.0
    )
    controller = runtime.controller(runtime.context(settings))
    await asyncio.to_thread(_users, settings)
    short, long = await asyncio.to_thread(_bulletins, controller, tmp_path)
    options = FleetOptions(root=tmp_path / "fleet", seed=3, trust_file=trusted_path(settings.keys_dir))
    fleet = Fleet(provisioning_records(load_inventory(str(inventory))), settings.broker_address, options)
    async with asyncio.TaskGroup() as tg:
        fleet_task = tg.create_task(fleet.run())
        await fleet.wait_online(30)
        async with controller.running(), runtime.monitored(controller, front_end("127.0.0.1:0")) as url:
            assert url is not None
            yield Desk(fleet, controller, url, short, long)
        fleet_task.cancel()


def _bulletins(controller: Controller, tmp_path: Path) -> tuple[int, int]:
    ids = []
    for seconds, title in ((1.0, "Thông báo ngắn"), (60.0, "Bản tin dài")):
        tone = generate_tone(seconds, path=tmp_path / f"tone-{int(seconds)}.wav")
        found, _ = import_bulletin(controller.store, controller.settings, SystemClock(), tone, title)
        ids.append(found.id)
    return ids[0], ids[1]


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    binary = _chromium()
    async with async_playwright() as pw:
        launched = await pw.chromium.launch(executable_path=binary, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            await launched.close()


async def _sign_in(browser: Browser, url: str, name: str) -> Page:
    page = await browser.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    await page.goto(url)
    await expect(page).to_have_url(re.compile(r"/login\?next="))
    await page.fill("input[name=name]", name)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("form[action='/login'] button[type=submit]")
    await expect(page.locator("#user")).to_contain_text(name)
    await expect(page.locator("body")).to_have_attribute("data-live-state", "open")
    return page


async def test_broadcast_to_a_commune_shows_its_progress_live_and_stops(desk: Desk, browser: Browser) -> None:
    page = await _sign_in(browser, desk.url, "xa1")
    await page.click("nav a[href='/broadcast']")
    await page.select_option("select[name=bulletin]", str(desk.bulletin_id))
    await page.select_option("select[name=to]", fleet_small.COMMUNE)
    await page.click("#broadcast-form button[type=submit]")
    started = page.locator("#flash [data-broadcast]")
    broadcast_id = await started.get_attribute("data-broadcast")
    await page.click("#flash a[href='/']")
    row = page.locator(f"#bc-{broadcast_id}")
    # Both clusters of the commune played it: the counts came in over the event stream.
    await expect(row.locator(".played")).to_have_text("2")
    await expect(page.locator(f"#zone-{fleet_small.COMMUNE}")).to_contain_text("2/2")


async def test_a_user_is_refused_outside_their_zone_and_can_read_english(
    desk: Desk, browser: Browser
) -> None:
    page = await _sign_in(browser, desk.url, "xa1")
    assert await page.locator("html").get_attribute("lang") == "vi"
    response = await page.goto(f"{desk.url}devices/{fleet_small.OTHER}-01")
    assert response is not None and response.status == 403
    await expect(page.locator(".refusal")).to_contain_text(fleet_small.OTHER)
    await page.goto(f"{desk.url}devices/{fleet_small.COMMUNE}-01")
    await page.click("#lang")
    await expect(page.locator("html")).to_have_attribute("lang", "en")
    await expect(page.locator("nav")).to_contain_text("Overview")
    await page.click("#ping")
    await expect(page.locator("#remote-result")).to_have_attribute("data-ok", "true")


async def test_a_viewer_is_refused_a_volume_change(desk: Desk, browser: Browser) -> None:
    page = await _sign_in(browser, desk.url, "xem1")
    await page.goto(f"{desk.url}devices/{fleet_small.COMMUNE}-01")
    await page.click("#volume-form button[type=submit]")
    await expect(page.locator("#result .refusal")).to_have_attribute("data-status", "403")
    audit = desk.controller.store.audit.entries(f"{fleet_small.COMMUNE}-01")
    assert not [a for a in audit if a.action.startswith("volume")]  # refused before anything was sent
