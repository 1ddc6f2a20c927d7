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
from typing import Any

import aiohttp
import fleet_small
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect
from waiting import Observed

from simulator.conditions import FleetConditions
from simulator.fleet import Fleet, FleetOptions
from speakerctl.app import broadcasts, runtime, schedules
from speakerctl.app.access import local_administrator
from speakerctl.app.accounts import NewUser, create_user
from speakerctl.app.approvals import set_policy
from speakerctl.app.bulletins import import_bulletin
from speakerctl.app.runtime import running_controller
from speakerctl.app.schedules import ScheduleSpec, build_rule
from speakerctl.audio import generate_tone
from speakerctl.broker.mosquitto import MosquittoProcess
from speakerctl.clock import SystemClock
from speakerctl.config import Settings
from speakerctl.controller.health import HealthPolicy
from speakerctl.controller.monitor import evaluate_once
from speakerctl.controller.remote import remote_action
from speakerctl.controller.service import Controller
from speakerctl.fleet import load_inventory, provisioning_records
from speakerctl.protocol import SetVolume
from speakerctl.security.keys import trusted_path
from speakerctl.web import WebServer, front_end

REQUIRE_CHROMIUM = "SPEAKERCTL_REQUIRE_CHROMIUM"
PASSWORD = "mat-khau-du-dai-1"
TIMEOUT_MS = 15_000
expect.set_options(timeout=TIMEOUT_MS)


@dataclass
class Desk:
    """A small fleet, its controller and console, and one bulletin in the library."""

    fleet: Fleet
    controller: Controller
    url: str
    bulletin_id: int
    long_bulletin_id: int
    server: WebServer


def _chromium() -> str:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        if os.environ.get(REQUIRE_CHROMIUM) == "1":
            pytest.fail(f"chromium is not installed, and {REQUIRE_CHROMIUM}=1 requires it", pytrace=False)
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return binary


USERS = (
    ("xa1", "approver", fleet_small.COMMUNE),
    ("lan1", "operator", fleet_small.COMMUNE),
    ("xem1", "viewer", fleet_small.COMMUNE),
)


def _users(settings: Settings) -> None:
    """Users of commune c1, whose operators wait for an approver."""
    ctx = runtime.context(settings)
    admin = local_administrator()
    for name, role, zone in USERS:
        create_user(ctx, NewUser(name, role, zone, PASSWORD), actor=admin)
    set_policy(ctx, fleet_small.COMMUNE, ["operator"], actor=admin)


@pytest.fixture
async def desk(mosquitto: MosquittoProcess, tmp_path: Path) -> AsyncIterator[Desk]:
    inventory = fleet_small.inventory(tmp_path / "fleet.json")
    settings = Settings(
        data_dir=tmp_path / "controller", broker=mosquitto.url, inventory=str(inventory), accept_window_s=1.0
    )
    controller = runtime.controller(runtime.context(settings))
    await asyncio.to_thread(_users, settings)
    short, long = await asyncio.to_thread(_bulletins, controller, tmp_path)
    await asyncio.to_thread(_programme, settings, short)
    trouble = FleetConditions(battery_share=1.0)  # every cluster on battery: an alert in each commune
    trust = trusted_path(settings.keys_dir)
    options = FleetOptions(root=tmp_path / "fleet", seed=3, conditions=trouble, trust_file=trust)
    fleet = Fleet(provisioning_records(load_inventory(str(inventory))), settings.broker_address, options)
    async with asyncio.TaskGroup() as tg:
        fleet_task = tg.create_task(fleet.run())
        await fleet.wait_online(30)
        servers: list[WebServer] = []

        def serve(running: Controller, policy: HealthPolicy) -> WebServer:
            servers.append(front_end("127.0.0.1:0")(running, policy))
            return servers[-1]

        async with controller.running(), runtime.monitored(controller, serve) as url:
            assert url is not None
            await evaluate_once(controller, HealthPolicy.from_settings(settings))
            yield Desk(fleet, controller, url, short, long, servers[0])
        fleet_task.cancel()


def _bulletins(controller: Controller, tmp_path: Path) -> tuple[int, int]:
    ids = []
    for seconds, title in ((1.0, "Thông báo ngắn"), (20.0, "Bản tin dài")):
        tone = generate_tone(seconds, path=tmp_path / f"tone-{int(seconds)}.wav")
        found, _ = import_bulletin(controller.store, controller.settings, SystemClock(), tone, title)
        ids.append(found.id)
    return ids[0], ids[1]


def _programme(settings: Settings, bulletin_id: int) -> None:
    rule = build_rule(settings.timezone, daily="06:00")
    spec = ScheduleSpec(bulletin_id, [fleet_small.COMMUNE], rule, name="Bản tin sáng")
    schedules.add(runtime.context(settings), spec, actor=local_administrator())


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
    broadcast_id = await page.locator("#flash [data-broadcast]").get_attribute("data-broadcast")
    await page.click("#flash a[href='/']")
    row = page.locator(f"#bc-{broadcast_id}")
    # Both clusters of the commune played it: the counts came in over the event stream.
    await expect(row.locator(".played")).to_have_text("2")
    await expect(page.locator(f"#zone-{fleet_small.COMMUNE}")).to_contain_text("2/2")
    # An emergency asks first; confirmed, it goes out, and the stop button silences it.
    await page.goto(f"{desk.url}broadcast?bulletin={desk.long_bulletin_id}")
    await page.check("input[name=priority][value=emergency]")
    await page.click("#broadcast-form button[type=submit]")
    await page.click("#confirm-yes")
    emergency = await page.locator("#flash [data-broadcast]").get_attribute("data-broadcast")
    await page.click("#flash a[href='/']")
    row = page.locator(f"#bc-{emergency}")
    await expect(row.locator(".reached")).to_have_text("2")
    await expect(page.locator("#on-air")).to_contain_text("Bản tin dài")
    await row.locator("button.stop").click()
    await expect(page.locator("#flash .notice")).to_contain_text(emergency or "?")
    await expect(row).to_have_attribute("data-state", "stopped")
    await expect(page.locator("#on-air")).not_to_contain_text("Bản tin dài")


async def test_an_operator_submits_and_an_approver_approves(
    desk: Desk, browser: Browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[object] = []  # controllers started to air it: none, it airs through serve's own

    def spy(*args: Any, **kwargs: Any) -> Any:
        started.append(args)
        return running_controller(*args, **kwargs)

    monkeypatch.setattr(broadcasts, "running_controller", spy)
    operator = await _sign_in(browser, desk.url, "lan1")
    await operator.goto(f"{desk.url}broadcast?bulletin={desk.bulletin_id}")
    await operator.click("#broadcast-form button[type=submit]")
    await expect(operator.locator("#flash [data-status='202']")).to_be_visible()
    approver = await _sign_in(browser, desk.url, "xa1")
    await approver.click("nav a[href='/approvals']")
    item = approver.locator("tr[id^=item-]")
    await expect(item).to_contain_text("lan1")
    await item.locator("button.approve").click()
    await expect(approver.locator("#flash .notice")).to_be_visible()
    await approver.click("nav a[href='/']")
    # The approved broadcast airs on both clusters of the commune, followed live.
    await expect(approver.locator("tr[id^=bc-] .played").first).to_have_text("2")
    assert started == []


async def test_a_user_is_refused_outside_their_zone_and_can_read_english(
    desk: Desk, browser: Browser
) -> None:
    page = await _sign_in(browser, desk.url, "xa1")
    assert await page.locator("html").get_attribute("lang") == "vi"
    await expect(page.locator("nav")).to_contain_text("Tổng quan")  # Vietnamese unless English is chosen
    response = await page.goto(f"{desk.url}devices/{fleet_small.OTHER}-01")
    assert response is not None and response.status == 403
    await expect(page.locator(".refusal")).to_contain_text(fleet_small.OTHER)
    # In the reader's language (Vietnamese), not the server's (English in the tests).
    await expect(page.locator(".refusal")).to_contain_text("chỉ được thao tác trên")
    await page.goto(f"{desk.url}devices/{fleet_small.COMMUNE}-01")
    await page.click("#lang")
    await expect(page.locator("html")).to_have_attribute("lang", "en")
    await expect(page.locator("nav")).to_contain_text("Overview")
    await page.click("#ping")
    await expect(page.locator("#remote-result")).to_have_attribute("data-ok", "true")


async def test_the_daily_pages_map_calendar_alerts_and_bulletins(desk: Desk, browser: Browser) -> None:
    page = await _sign_in(browser, desk.url, "xa1")
    await page.click("nav a[href='/map']")
    await page.wait_for_function("window.consoleMap !== undefined")
    mine = [d for d in desk.fleet.devices if d.startswith(fleet_small.COMMUNE)]
    await expect(page.locator("ul.clusters li.device")).to_have_count(len(mine))
    assert await page.evaluate("Object.keys(window.consoleMap.markers).length") == len(mine)
    await expect(page.locator(".leaflet-interactive")).to_have_count(len(mine) + 1)  # markers and outline
    await page.click("nav a[href='/schedule']")
    await expect(page.locator(".day.today .slot")).to_contain_text("06:00")
    await expect(page.locator(".calendar .slot")).to_have_count(7)
    await page.click("nav a[href='/alerts']")
    first = page.locator("tr.alert").first
    await first.locator("button.ack").click()
    await expect(first).to_contain_text("xa1")  # the list was patched live with who acknowledged
    await page.set_viewport_size({"width": 390, "height": 800})  # a phone: nothing is cut off or too wide
    await expect(page.locator("tr.alert").first).to_be_visible()
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    await page.click("nav a[href='/bulletins']")
    audio = page.locator(f"#bulletin-{desk.bulletin_id} audio")
    loaded = (
        "a => new Promise((ok, no) => {a.onloadedmetadata = () => ok(a.duration); a.onerror = no; a.load()})"
    )
    duration = await audio.evaluate(loaded)
    assert 0.5 < duration < 2.5


async def test_a_viewer_is_refused_a_volume_change(desk: Desk, browser: Browser) -> None:
    page = await _sign_in(browser, desk.url, "xem1")
    await page.goto(f"{desk.url}devices/{fleet_small.COMMUNE}-01")
    await page.click("#volume-form button[type=submit]")
    await expect(page.locator("#result .refusal")).to_have_attribute("data-status", "403")
    audit = desk.controller.store.audit.entries(f"{fleet_small.COMMUNE}-01")
    assert not [a for a in audit if a.action.startswith("volume")]  # refused before anything was sent


async def _sign_in_http(http: aiohttp.ClientSession, url: str, name: str) -> None:
    async with http.get(url + "login") as r:
        csrf = re.search(r'name="csrf" value="([^"]+)"', await r.text())
    assert csrf is not None
    form = {"csrf": csrf.group(1), "name": name, "password": PASSWORD, "next": "/"}
    async with http.post(url + "login", data=form) as r:
        assert r.status == 200


async def _follow(http: aiohttp.ClientSession, url: str, path: str, seen: Observed[bytes]) -> None:
    """Open a page and hold its event stream, reporting every chunk that arrives."""
    async with http.get(url + path) as r:
        live = re.search(r'data-live="(/events[^"]+)"', await r.text())
    assert live is not None
    async with http.get(url + live.group(1).replace("&amp;", "&")[1:]) as stream:
        async for chunk in stream.content.iter_any():
            seen.add(chunk)


async def test_an_open_page_hears_only_what_changes_on_it(desk: Desk) -> None:
    device, hub = f"{fleet_small.COMMUNE}-01", desk.server.hub
    rounds: Observed[int] = Observed()
    hub.after_round.append(rounds.add)
    overview, detail = Observed[bytes](), Observed[bytes]()
    async with (
        aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http,
        asyncio.TaskGroup() as tg,
    ):
        await _sign_in_http(http, desk.url, "xa1")
        tasks = [tg.create_task(_follow(http, desk.url, "", overview))]
        tasks.append(tg.create_task(_follow(http, desk.url, f"devices/{device}", detail)))
        await detail.wait_for(lambda items: len(items) >= 1, "the detail's stream to open")
        await overview.wait_for(lambda items: len(items) >= 1, "the overview's stream to open")
        first = hub.rounds
        hub.poke()  # one look after both streams opened: whatever they lacked is sent now
        await rounds.wait_for(lambda items: bool(items) and items[-1] > first, "a look at the store")
        quiet = len(overview.items), b"".join(overview.items)
        flushes = desk.controller.ingestor.counters.flushes
        await remote_action(desk.controller, device, SetVolume(42), actor="xa1")
        await detail.wait_for(lambda items: b"<dd>42</dd>" in b"".join(items), "the new volume on the detail")
        await rounds.wait_for(
            lambda _: desk.controller.ingestor.counters.flushes > flushes, "the report stored"
        )
        latest = rounds.items[-1]
        await rounds.wait_for(lambda items: items[-1] > latest, "one more look at the store")
        async with http.post(f"{desk.url}alerts/1/acknowledge") as refused:  # no CSRF token
            assert refused.status == 403
        for task in tasks:
            task.cancel()
    # The overview shows no volume: it was sent nothing. The detail got its one part, a few hundred bytes.
    assert (len(overview.items), b"".join(overview.items)) == quiet
    patches = [c for c in detail.items if b"event: patch" in c]
    assert all(c.count(b"event: patch") == 1 and b'id="device-state"' in c for c in patches[-1:])
    assert len(patches[-1]) < 1500
