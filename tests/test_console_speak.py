""" "Speak now" in the console: a real headless Chromium with its fake microphone, over a WebSocket.

A real Mosquitto, six simulated clusters in three communes (tests/fleet_small.py), a controller with its
web server: a commune official signs in, speaks, the commune's clusters play the frames (one cluster's
audio decodes with real ffmpeg to non-silent sound), and the stop button or closing the page ends the
stream on every cluster. A browser that refuses the microphone shows one line and sends nothing.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import fleet_small
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect
from waiting import wait_until

from simulator.fleet import Fleet, FleetOptions
from speakerctl.app import runtime
from speakerctl.app.access import local_administrator
from speakerctl.app.accounts import NewUser, create_user
from speakerctl.audio.ffmpeg import measure
from speakerctl.audio.ogg import ogg_opus
from speakerctl.broker.mosquitto import MosquittoProcess
from speakerctl.config import Settings
from speakerctl.controller.health import HealthPolicy
from speakerctl.controller.service import Controller
from speakerctl.fleet import load_inventory, provisioning_records
from speakerctl.security.keys import trusted_path
from speakerctl.web import WebServer, front_end

REQUIRE_CHROMIUM = "SPEAKERCTL_REQUIRE_CHROMIUM"
PASSWORD = "mat-khau-du-dai-1"
TIMEOUT_MS = 20_000
FAKE_MICROPHONE = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]
expect.set_options(timeout=TIMEOUT_MS)


@dataclass
class Desk:
    """A small fleet, its controller and console."""

    fleet: Fleet
    controller: Controller
    url: str
    tmp: Path

    def commune(self) -> list[str]:
        """The clusters of the official's commune."""
        return [d for d in self.fleet.devices if d.startswith(fleet_small.COMMUNE)]


def _chromium() -> str:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        if os.environ.get(REQUIRE_CHROMIUM) == "1":
            pytest.fail(f"chromium is not installed, and {REQUIRE_CHROMIUM}=1 requires it", pytrace=False)
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return binary


def _official(settings: Settings) -> None:
    create_user(
        runtime.context(settings),
        NewUser("xa1", "approver", fleet_small.COMMUNE, PASSWORD),
        actor=local_administrator(),
    )


@pytest.fixture
async def desk(mosquitto: MosquittoProcess, tmp_path: Path) -> AsyncIterator[Desk]:
    inventory = fleet_small.inventory(tmp_path / "fleet.json")
    settings = Settings(data_dir=tmp_path / "controller", broker=mosquitto.url, inventory=str(inventory))
    controller = runtime.controller(runtime.context(settings))
    await asyncio.to_thread(_official, settings)
    options = FleetOptions(root=tmp_path / "fleet", seed=3, trust_file=trusted_path(settings.keys_dir))
    fleet = Fleet(provisioning_records(load_inventory(str(inventory))), settings.broker_address, options)
    async with asyncio.TaskGroup() as tg:
        fleet_task = tg.create_task(fleet.run())
        await fleet.wait_online(30)

        def serve(running: Controller, policy: HealthPolicy) -> WebServer:
            return front_end("127.0.0.1:0")(running, policy)

        async with controller.running(), runtime.monitored(controller, serve) as url:
            assert url is not None
            yield Desk(fleet, controller, url, tmp_path)
        fleet_task.cancel()


async def _browser(args: list[str]) -> AsyncIterator[Browser]:
    binary = _chromium()
    async with async_playwright() as pw:
        launched = await pw.chromium.launch(executable_path=binary, args=["--no-sandbox", *args])
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async for launched in _browser(FAKE_MICROPHONE):
        yield launched


@pytest.fixture
async def refusing_browser() -> AsyncIterator[Browser]:
    # A microphone is there, but nobody answers the permission prompt: the browser refuses it.
    async for launched in _browser(["--use-fake-device-for-media-stream"]):
        yield launched


async def _speak_page(browser: Browser, url: str) -> Page:
    page = await browser.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    await page.goto(url + "login?next=/speak")
    await page.fill("input[name=name]", "xa1")
    await page.fill("input[name=password]", PASSWORD)
    await page.click("form[action='/login'] button[type=submit]")
    await expect(page.locator("#speak-form")).to_be_visible()
    await page.select_option("select[name=to]", fleet_small.COMMUNE)
    return page


def _frames(desk: Desk, device_id: str) -> int:
    return len(desk.fleet.devices[device_id].output.live_frames)


async def test_speak_now_reaches_the_communes_clusters_intact_and_stop_ends_it(
    desk: Desk, browser: Browser
) -> None:
    page = await _speak_page(browser, desk.url)
    await page.click("#speak-start")
    await expect(page.locator("#speak-status")).to_have_attribute("data-state", "live")
    commune = desk.commune()
    await wait_until(lambda: all(_frames(desk, d) >= 8 for d in commune), "3 s of speech on every cluster")
    await page.click("#speak-stop")
    await expect(page.locator("#speak-status")).to_have_attribute("data-state", "ended")
    agents = [desk.fleet.devices[d].agent for d in desk.fleet.devices]
    await wait_until(lambda: not any(a.live_streams() for a in agents), "every cluster stopped")
    others = [d for d in desk.fleet.devices if d not in commune]
    assert all(_frames(desk, d) == 0 for d in others)  # only the chosen commune heard it
    record = desk.controller.store.live.latest()[0]
    assert (record.source, record.actor, record.end_reason) == ("browser:xa1", "xa1", "stopped")
    rows = desk.controller.store.live.clusters(record.id)
    assert {r.device_id for r in rows if r.played} == set(commune)
    assert {r.reason for r in rows if r.played} == {"stopped"}
    # What one cluster received decodes, with real ffmpeg, to the fake microphone's beeps.
    packets = [p for f in desk.fleet.devices[commune[0]].output.live_frames for p in f.packets]
    received = desk.tmp / "received.opus"
    received.write_bytes(ogg_opus(packets, samples_per_packet=960))
    heard = measure(received, context="audio from the browser")
    assert heard.duration_ms >= 3000
    assert not heard.loudness.silent and heard.loudness.integrated_lufs > -40


async def test_closing_the_page_ends_the_stream_on_every_cluster(desk: Desk, browser: Browser) -> None:
    page = await _speak_page(browser, desk.url)
    await page.click("#speak-start")
    commune = desk.commune()
    await wait_until(lambda: all(_frames(desk, d) >= 3 for d in commune), "speech on every cluster")
    await page.close()
    agents = [desk.fleet.devices[d].agent for d in commune]
    await wait_until(lambda: not any(a.live_streams() for a in agents), "every cluster stopped")
    await wait_until(lambda: desk.controller.store.live.running() == [], "the stream recorded as ended")
    record = desk.controller.store.live.latest()[0]
    assert record.end_reason == "stopped" and record.ended_at is not None


async def test_an_emergency_asks_first(desk: Desk, browser: Browser) -> None:
    page = await _speak_page(browser, desk.url)
    await page.check("input[name=priority][value=emergency]")
    await page.click("#speak-start")
    await expect(page.locator("#speak-status")).to_have_attribute("data-state", "confirm")
    assert desk.controller.store.live.latest() == []  # nothing aired before the answer
    await page.click("#speak-confirm")
    await expect(page.locator("#speak-status")).to_have_attribute("data-state", "live")
    await page.click("#speak-stop")
    await expect(page.locator("#speak-status")).to_have_attribute("data-state", "ended")
    assert desk.controller.store.live.latest()[0].priority == 3


async def test_a_browser_that_refuses_the_microphone_says_so_and_nothing_plays(
    desk: Desk, refusing_browser: Browser
) -> None:
    page = await _speak_page(refusing_browser, desk.url)
    await page.click("#speak-start")
    status = page.locator("#speak-status")
    await expect(status).to_have_attribute("data-state", "denied")
    text = await status.inner_text()
    assert text.strip() and "\n" not in text.strip()
    assert desk.controller.store.live.latest() == []
    assert all(_frames(desk, d) == 0 for d in desk.fleet.devices)


async def test_the_socket_refuses_a_stale_csrf_token_and_a_zone_outside_the_users(desk: Desk) -> None:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.get(desk.url + "login") as r:
            csrf = re.search(r'name="csrf" value="([^"]+)"', await r.text())
        assert csrf is not None
        form = {"csrf": csrf.group(1), "name": "xa1", "password": PASSWORD, "next": "/speak"}
        async with http.post(desk.url + "login", data=form) as r:
            page = await r.text()
        token = re.search(r'name="csrf" value="([^"]+)"', page)
        assert token is not None
        asked = [
            {"csrf": "stale", "to": fleet_small.COMMUNE, "priority": "normal"},
            {"csrf": token.group(1), "to": fleet_small.OTHER, "priority": "normal"},
        ]
        answers = []
        for request in asked:
            async with http.ws_connect(desk.url + "speak/socket") as ws:
                await ws.send_json(request)
                answers.append(await ws.receive_json())
    assert "CSRF" in answers[0]["error"]
    assert fleet_small.OTHER in answers[1]["error"]
    assert desk.controller.store.live.latest() == []
