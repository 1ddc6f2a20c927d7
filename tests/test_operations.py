"""Monitoring end to end: a simulated fleet with trouble, the controller's alerts, remote actions, the
console's sign-in in a real headless Chromium, the JSON API and /metrics (open without a session)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from simulator.conditions import FleetConditions
from simulator.fleet import Fleet, FleetOptions
from speakerctl.app import runtime
from speakerctl.app.bulletins import import_bulletin
from speakerctl.audio import generate_tone
from speakerctl.broker.embedded import EmbeddedBroker
from speakerctl.clock import SystemClock
from speakerctl.config import Settings
from speakerctl.controller.health import HealthPolicy
from speakerctl.controller.monitor import evaluate_once
from speakerctl.controller.remote import remote_action
from speakerctl.controller.reports import outcome_by_zone, play_log
from speakerctl.controller.service import BroadcastRequest, Controller
from speakerctl.errors import AckTimeout
from speakerctl.fleet import load_inventory, provisioning_records
from speakerctl.protocol import Ping, SetVolume
from speakerctl.security.keys import trusted_path
from speakerctl.web import front_end, parse_bind
from speakerctl.web.server import SNAPSHOT_TTL_S

ZONE = "st-ke-sach"
REQUIRE_CHROMIUM = "SPEAKERCTL_REQUIRE_CHROMIUM"


@dataclass
class Ops:
    """A troubled fleet, a controller with monitoring and its web page."""

    fleet: Fleet
    controller: Controller
    url: str


@pytest.fixture
async def ops(embedded_broker: EmbeddedBroker, tmp_path: Path) -> AsyncIterator[Ops]:
    settings = Settings(
        data_dir=tmp_path / "controller",
        broker=embedded_broker.url,
        min_firmware="0.1.0",
        accept_window_s=1.0,
    )
    inventory = load_inventory()
    ids = {d.id for d in inventory.devices_under(ZONE)}
    conditions = FleetConditions(battery_share=0.3, amplifier_fault_share=0.15, old_firmware_share=0.2)
    # creates the signing key clusters trust
    controller = runtime.controller(runtime.context(settings, SkippingClock()))
    options = FleetOptions(
        root=tmp_path / "fleet",
        time_scale=20,
        seed=7,
        conditions=conditions,
        trust_file=trusted_path(settings.keys_dir),
    )
    fleet = Fleet(provisioning_records(inventory), settings.broker_address, options)
    fleet.devices = {k: v for k, v in fleet.devices.items() if k in ids}
    async with asyncio.TaskGroup() as tg:
        fleet_task = tg.create_task(fleet.run())
        await fleet.wait_online(30)
        policy = HealthPolicy.from_settings(settings)
        async with controller.running(), runtime.monitored(controller, front_end("127.0.0.1:0")) as url:
            assert url is not None
            await evaluate_once(controller, policy)
            yield Ops(fleet, controller, url)
        fleet_task.cancel()


class SkippingClock(SystemClock):
    """The host's clock, whose monotonic reading a test can move ahead."""

    def __init__(self) -> None:
        self.skipped_s = 0.0

    def monotonic(self) -> float:
        """The host's monotonic clock plus what the test skipped."""
        return super().monotonic() + self.skipped_s

    def skip(self, seconds: float) -> None:
        """Move the monotonic reading ahead."""
        self.skipped_s += seconds


def _expected(fleet: Fleet) -> dict[str, set[str]]:
    by_kind: dict[str, set[str]] = {"on_battery": set(), "amplifier_fault": set(), "outdated_firmware": set()}
    for device_id, d in fleet.devices.items():
        if d.telemetry.source == "battery":
            by_kind["on_battery"].add(device_id)
        if d.amplifier.state == "fault":
            by_kind["amplifier_fault"].add(device_id)
        if d.agent.config.firmware.endswith("0.0.9"):
            by_kind["outdated_firmware"].add(device_id)
    return by_kind


async def test_the_simulated_trouble_becomes_alerts_and_shows_in_the_api(ops: Ops) -> None:
    expected = _expected(ops.fleet)
    assert all(expected.values()), expected  # the seed gives at least one of each
    store = ops.controller.store
    open_alerts = store.alerts.all(open_only=True)
    for kind, devices in expected.items():
        assert {a.device_id for a in open_alerts if a.kind == kind} == devices, kind
    offline = {a.device_id for a in open_alerts if a.kind == "offline"}
    assert offline == {d.id for d in store.devices.all()} - set(ops.fleet.devices)  # never heard from
    async with aiohttp.ClientSession() as http:
        async with http.get(ops.url + "api/fleet") as response:
            data = await response.json()
        async with http.get(ops.url + "metrics") as response:
            assert (response.content_type, response.charset) == ("text/plain", "utf-8")
            metrics = await response.text()
    n = len(ops.fleet.devices)
    assert data["totals"]["online"] == n
    ke_sach = next(z for z in data["zones"] if z["id"] == ZONE)
    assert (ke_sach["name"], ke_sach["online"], ke_sach["offline"]) == ("Kế Sách", n, 0)
    assert ke_sach["fault"] == len(expected["amplifier_fault"])
    assert f'speakerctl_devices{{state="online"}} {n}' in metrics
    assert re.search(r"^speakerctl_ingested_statuses_total [1-9]", metrics, re.M)
    assert f'speakerctl_alerts_open{{kind="on_battery"}} {len(expected["on_battery"])}' in metrics


async def test_remote_actions_are_acknowledged_or_time_out_and_are_audited(ops: Ops) -> None:
    device_id, device = next(iter(ops.fleet.devices.items()))
    result = await remote_action(ops.controller, device_id, SetVolume(42), actor="can-bo-xa")
    assert result.ok and device.agent.player.volume == 42
    ping = await remote_action(ops.controller, device_id, Ping(), actor="can-bo-xa")
    assert ping.rtt_ms > 0
    absent = next(d.id for d in ops.controller.store.devices.all() if d.id not in ops.fleet.devices)
    with pytest.raises(AckTimeout):
        await remote_action(ops.controller, absent, Ping(), actor="can-bo-xa", timeout=0.3)
    log = ops.controller.store.audit.entries()
    assert [(a.device_id, a.action, a.outcome) for a in log] == [
        (absent, "ping", "timeout"),
        (device_id, "ping", "ok"),
        (device_id, "set_volume 42", "ok"),
    ]
    assert all(a.actor == "can-bo-xa" for a in log)


def _chromium() -> str:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        if os.environ.get(REQUIRE_CHROMIUM) == "1":
            pytest.fail(f"chromium is not installed, and {REQUIRE_CHROMIUM}=1 requires it", pytrace=False)
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return binary


async def _headless(binary: str, profile: Path, *args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--virtual-time-budget=8000", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), 90)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    return out.decode()


async def test_the_console_sends_a_stranger_to_sign_in_in_a_headless_browser(
    ops: Ops, tmp_path: Path
) -> None:
    # The console itself is driven with clicks in tests/test_console.py; here: no session, no fleet data.
    binary = _chromium()
    dom = await _headless(binary, tmp_path / "profile", "--dump-dom", ops.url)
    assert '<form method="post" action="/login">' in dom and 'name="csrf"' in dom
    assert "Kế Sách" not in dom and 'lang="vi"' in dom
    shot = tmp_path / "login.png"
    await _headless(binary, tmp_path / "profile2", f"--screenshot={shot}", "--window-size=420,800", ops.url)
    assert shot.exists() and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    keep = os.environ.get("SPEAKERCTL_KEEP_SCREENSHOT")
    if keep:
        shutil.copy(shot, keep)


def test_bind_addresses() -> None:
    assert parse_bind("127.0.0.1:8080") == ("127.0.0.1", 8080)
    assert parse_bind("8080") == ("127.0.0.1", 8080)
    assert parse_bind("[::1]:9000") == ("::1", 9000)
    assert json.dumps(parse_bind(":0")) == '["127.0.0.1", 0]'


async def test_a_broadcast_shows_in_reports_alerts_and_metrics(ops: Ops, tmp_path: Path) -> None:
    controller = ops.controller
    tone = generate_tone(1.0, path=tmp_path / "thong-bao.wav")
    bulletin, _ = await asyncio.to_thread(
        import_bulletin, controller.store, controller.settings, SystemClock(), tone, "Thông báo lịch cúp điện"
    )
    result = await controller.broadcast(BroadcastRequest(bulletin.id, (ZONE,)))
    faulty = _expected(ops.fleet)["amplifier_fault"]
    assert result.counts.get("failed") == len(faulty) and result.played == len(ops.fleet.devices) - len(
        faulty
    )
    await evaluate_once(controller, HealthPolicy.from_settings(controller.settings))
    failed = {a.device_id for a in controller.store.alerts.all(open_only=True) if a.kind == "failed_to_sound"}
    assert failed == faulty
    by_zone = outcome_by_zone(controller.store, result.broadcast_id)
    assert [(o.name, o.played, o.failed, dict(o.reasons)) for o in by_zone] == [
        ("Kế Sách", result.played, len(faulty), {"amplifier_fault": len(faulty)})
    ]
    now = controller.clock.now()
    rows = play_log(controller.store, now - timedelta(minutes=5), now, ZoneInfo("Asia/Ho_Chi_Minh"), ZONE)
    assert len(rows) == result.played and {r["bulletin"] for r in rows} == {"Thông báo lịch cúp điện"}
    assert isinstance(controller.clock, SkippingClock)
    controller.clock.skip(SNAPSHOT_TTL_S + 1)  # the page's cached snapshot is out of date now
    async with aiohttp.ClientSession() as http:
        async with http.get(ops.url + "api/fleet") as response:
            data = await response.json()
        async with http.get(ops.url + "metrics") as response:
            metrics = await response.text()
    assert data["broadcasts"][0]["id"] == result.broadcast_id
    assert data["broadcasts"][0]["played"] == result.played
    assert f'speakerctl_deliveries{{state="finished"}} {result.played}' in metrics
    latency = re.search(r"^speakerctl_broadcast_reach_latency_seconds ([0-9.e+-]+)$", metrics, re.M)
    assert latency and 0 < float(latency.group(1)) < 30
