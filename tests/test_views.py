"""The JSON records are the public API: their field names are pinned, and the CLI and HTTP agree."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from typer.testing import CliRunner

from speakerctl.app import views
from speakerctl.app.context import open_store
from speakerctl.cli import common
from speakerctl.cli.main import app
from speakerctl.clock import FixedClock
from speakerctl.config import Settings
from speakerctl.controller.health import HealthPolicy, evaluate
from speakerctl.controller.service import Controller
from speakerctl.protocol import Power, Status
from speakerctl.store import BroadcastState, DeliveryStatus, DeliveryUpdate
from speakerctl.web import WebServer

NOW = datetime(2026, 11, 29, 6, 0, tzinfo=UTC)
DEV = "st-ke-sach-an-my-01"
OTHER = "st-ke-sach-an-my-02"

DEVICE = (
    "id", "name", "zone", "model", "link_type", "lat", "lon", "online", "last_seen", "firmware", "volume",
    "playing", "amplifier", "power", "battery_pct", "uplink", "rssi_dbm", "temperature_c", "storage_free_mb",
    "clock_offset_ms", "cached_count", "uptime_s",
)  # fmt: skip
BULLETIN = (
    "id", "title", "duration_s", "codec", "size", "sha256", "source", "created_at", "created_by",
    "loudness_lufs", "true_peak_dbtp", "profile",
)  # fmt: skip
SCHEDULE = (
    "id", "name", "bulletin", "relay", "targets", "rule", "priority", "on_preempt", "window_s", "paused",
    "next_at",
)  # fmt: skip

# fmt: off
PUBLIC_FIELDS: dict[type[views.View], tuple[str, ...]] = {
    views.ZoneView: ("id", "name", "kind", "parent", "devices"),
    views.DeviceView: DEVICE,
    views.DeviceHealthView: (*DEVICE, "fault", "open_alerts"),
    views.DeviceDetailView: (*DEVICE, "zone_path", "history", "alerts", "actions"),
    views.StatusView: (
        "received_at",
        "online",
        "volume",
        "playing",
        "amplifier",
        "power",
        "battery_pct",
        "uplink",
        "rssi_dbm",
        "temperature_c",
        "clock_offset_ms",
    ),
    views.AlertView: ("id", "kind", "device", "opened_at", "closed_at", "detail"),
    views.ActionView: ("at", "actor", "device", "action", "outcome", "detail"),
    views.LocationView: ("device", "name", "zone_path", "lat", "lon", "map"),
    views.RemoteResultView: ("device", "action", "ok", "detail", "rtt_ms", "clock_offset_ms"),
    views.ZoneSummaryView: (
        "id",
        "name",
        "kind",
        "depth",
        "total",
        "online",
        "offline",
        "fault",
        "last_targeted",
        "last_reached",
        "last_played",
    ),
    views.BroadcastReachView: ("id", "state", "created_at", "targets", "targeted", "reached", "played"),
    views.FleetView: ("at", "totals", "zones", "devices", "alerts", "broadcasts", "last_broadcast"),
    views.BroadcastResultView: (
        *("broadcast", "total", "played", "complete", "counts", "reach_latency_s", "stopped_by"),
    ),
    views.ZoneOutcomeView: ("zone", "name", "targeted", "reached", "played", "failed", "missed", "reasons"),
    views.MissedView: ("device", "state", "reason", "detail"),
    views.BroadcastReportView: (
        "broadcast",
        "bulletin",
        "state",
        "priority",
        "targets",
        "counts",
        "zones",
        "not_played",
        "started_by",
        "approved_by",
        "stopped_by",
        "cap",
    ),
    views.StopView: (
        "broadcast",
        "zones",
        "whole",
        "state",
        "clusters",
        "confirmed",
        "ended_otherwise",
        "unconfirmed",
        "stopped_by",
        "stopped_at",
    ),
    views.PlayView: (
        "date",
        "district",
        "commune",
        "device",
        "device_name",
        "bulletin",
        "priority",
        "broadcast",
        "started_at",
        "ended_at",
        "aired_s",
        "outcome",
        "cap",
    ),
    views.BulletinView: BULLETIN,
    views.ImportedView: (*BULLETIN, "created"),
    views.BulletinDetailView: (*BULLETIN, "variants", "airings"),
    views.VariantView: ("codec", "bitrate_kbps", "size", "sha256"),
    views.TargetView: ("id", "name"),
    views.AiringView: (
        "broadcast",
        "at",
        "state",
        "priority",
        "targets",
        "clusters",
        "played",
        "first_playing_at",
        "last_finished_at",
    ),
    views.ExportedView: ("id", "path", "size"),
    views.RemovedView: ("id", "title", "removed"),
    views.ScheduleView: SCHEDULE,
    views.AddedScheduleView: (*SCHEDULE, "overlaps"),
    views.ScheduleDetailView: (*SCHEDULE, "upcoming", "runs"),
    views.OverlapView: ("existing", "at", "winner", "why"),
    views.RunView: ("fire_at", "state", "broadcast", "detail"),
    views.SegmentView: ("start", "end", "target", "schedule", "priority", "note"),
    views.KeyView: ("key_id", "active"),
    views.AccountView: ("username", "secret"),
    views.ProvisionedView: ("trusted_keys", "key_id", "accounts"),
    views.BundleView: ("device_id", "directory", "brokers", "tls_ca"),
    views.BundlesView: ("key_id", "bundles"),
    views.RemapZoneView: ("zone", "name", "kind", "added", "clusters", "from_zones"),
    views.RemapScheduleView: ("schedule", "name", "before", "after"),
    views.RemapKeptView: ("zone", "clusters", "reason"),
    views.ConfigureView: ("device", "outcome", "detail"),
    views.RemapView: (
        "mapping", "applied", "moved", "added", "retired", "zones", "schedules", "kept", "configure",
        "acknowledged", "needs_reprovisioning",
    ),
    views.UserView: ("name", "display_name", "role", "zone", "disabled", "created_at"),
    views.WhoamiView: ("user", "role", "zone", "signed_in"),
    views.ItemView: (
        "id", "kind", "bulletin", "zone", "targets", "priority", "from_above", "submitted_by", "submitted_at",
        "at", "state", "decided_by", "decided_at", "reason", "result",
    ),
    views.ApprovedView: ("item", "broadcast", "schedule", "forwarded"),
    views.PolicyView: ("zone", "approval_for", "set_on"),
    views.CapAlertView: (
        "id", "identifier", "sender", "sent", "status", "msg_type", "received_at", "source", "event",
        "headline", "language", "priority", "risk_level", "targets", "expires", "state", "detail",
        "bulletin", "next_air_at", "broadcasts", "duplicate",
    ),
    views.AcceptedView: ("broadcast", "items", "message"),
    views.TokenView: ("id", "user", "label", "prefix", "created_at", "last_used_at"),
    views.NewTokenView: ("id", "user", "label", "prefix", "created_at", "last_used_at", "token"),
}
# fmt: on


def _all_views() -> set[type[views.View]]:
    found = {v for v in vars(views).values() if isinstance(v, type) and issubclass(v, views.View)}
    return found - {views.View}


def test_every_record_has_its_field_names_pinned() -> None:
    assert set(PUBLIC_FIELDS) == _all_views(), "a new view: pin its fields here"
    for view, fields in PUBLIC_FIELDS.items():
        assert tuple(view.model_fields) == fields, view.__name__


def test_timestamps_are_iso_8601_with_their_offset() -> None:
    local = datetime(2026, 11, 29, 13, 0, tzinfo=ZoneInfo("Asia/Ho_Chi_Minh"))
    run = views.RunView(fire_at=local, state="aired", broadcast="bc-1", detail="")
    assert run.dump()["fire_at"] == "2026-11-29T13:00:00+07:00"
    naive = views.RunView(fire_at=datetime(2026, 11, 29, 6, 0), state="aired", broadcast="", detail="")
    assert naive.dump()["fire_at"] == "2026-11-29T06:00:00+00:00"  # the store's naive times are UTC
    alert = views.AlertView(id=1, kind="offline", device=DEV, opened_at=NOW, closed_at=None, detail="")
    assert alert.dump()["opened_at"] == "2026-11-29T06:00:00+00:00" and alert.dump()["closed_at"] is None


@pytest.fixture
def settings(tmp_path: Path) -> Iterator[Settings]:
    """A store with two clusters heard from, one broadcast and evaluated alerts; the CLI's clock at NOW."""
    settings = Settings(data_dir=tmp_path / "data")
    store = open_store(settings)
    ms = int(NOW.timestamp() * 1000)
    statuses = [
        Status(DEV, True, ms, firmware="speakerctl-agent 0.1.0", volume=60, temperature_c=34.0),
        Status(OTHER, True, ms, power=Power("battery", 48), amplifier="fault", clock_offset_ms=5200),
    ]
    store.statuses.apply(statuses, NOW)
    bulletin = store.bulletins.add(
        "Bản tin sáng", "ef" * 32, "opus", "ogg", 24, 60_000, 180_000, "ban-tin.mp3", "admin", NOW
    )
    start = NOW - timedelta(minutes=3)
    store.broadcasts.create("bc-test", bulletin.id, 1, ["st-ke-sach-an-my"], [DEV, OTHER], start, start, NOW)
    t = int(start.timestamp() * 1000)
    store.deliveries.apply(
        [
            DeliveryUpdate("bc-test", DEV, DeliveryStatus.FINISHED, None, "", t + 61_000),
            DeliveryUpdate("bc-test", OTHER, DeliveryStatus.FAILED, "amplifier_fault", "", t + 900),
        ]
    )
    store.broadcasts.finish("bc-test", BroadcastState.INCOMPLETE, NOW)
    evaluate(store, NOW, HealthPolicy.from_settings(settings))
    store.close()
    common.state.clock = FixedClock(NOW)
    yield settings
    common.state.clock = None


def _cli_json(settings: Settings, *args: str) -> Any:
    result = CliRunner().invoke(app, ["--data-dir", str(settings.data_dir), *args, "--json"])
    assert result.exit_code == 0, (result.output, result.exception)
    return json.loads(result.output)


async def test_the_cli_and_the_http_api_print_the_same_records(settings: Settings) -> None:
    store = open_store(settings)
    controller = Controller(settings, store, FixedClock(NOW))
    server = WebServer(controller, HealthPolicy.from_settings(settings), "127.0.0.1", 0)
    await server.start()
    try:
        async with aiohttp.ClientSession() as http:
            served = {}
            for path in ("fleet", "devices", "alerts"):
                async with http.get(f"{server.url}api/{path}") as response:
                    served[path] = await response.json()
    finally:
        await server.stop()
        store.close()
    devices = _cli_json(settings, "devices", "list")
    assert devices == served["devices"] and {d["id"] for d in devices if d["online"]} == {DEV, OTHER}
    assert _cli_json(settings, "alerts", "list", "--open", "--limit", "1000") == served["alerts"]
    fleet = _cli_json(settings, "fleet", "status")
    assert fleet == served["fleet"] and fleet["at"] == "2026-11-29T06:00:00+00:00"
    assert fleet["last_broadcast"]["id"] == "bc-test"


async def test_the_page_answers_only_to_its_own_host_names(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", web_hosts="loa.example.vn")
    store = open_store(settings)
    controller = Controller(settings, store, FixedClock(NOW))
    server = WebServer(controller, HealthPolicy.from_settings(settings), "127.0.0.1", 0)
    await server.start()
    statuses = {}
    try:
        async with aiohttp.ClientSession() as http:
            for host in ("attacker.example", f"127.0.0.1:{server.port}", "localhost", "LOA.example.vn:80"):
                async with http.get(f"{server.url}api/fleet", headers={"Host": host}) as response:
                    statuses[host.split(":")[0].lower()] = response.status
    finally:
        await server.stop()
        store.close()
    assert statuses == {"attacker.example": 421, "127.0.0.1": 200, "localhost": 200, "loa.example.vn": 200}
