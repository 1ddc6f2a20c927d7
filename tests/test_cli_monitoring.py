"""The monitoring and management commands, driven with CliRunner; remote actions against a fleet process."""

from __future__ import annotations

import contextlib
import csv
import json
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from speakerctl.app.context import open_store
from speakerctl.app.runtime import fleet_process
from speakerctl.broker.embedded import EmbeddedBroker
from speakerctl.broker.ports import free_port
from speakerctl.cli.main import app, exit_code
from speakerctl.config import Settings
from speakerctl.controller.health import HealthPolicy, evaluate
from speakerctl.errors import SpeakerctlError
from speakerctl.fleet import load_inventory
from speakerctl.protocol import Power, Status
from speakerctl.security.keys import load_or_create_signer
from speakerctl.store import BroadcastState, DeliveryStatus, DeliveryUpdate

DEV = "st-ke-sach-an-my-01"
OTHER = "st-ke-sach-an-my-02"


@pytest.fixture
def data(tmp_path: Path) -> Iterator[tuple[CliRunner, list[str], str]]:
    """A data dir whose store has two clusters heard from, one broadcast, and evaluated alerts."""
    settings = Settings(data_dir=tmp_path / "data")
    store = open_store(settings)
    now = datetime.now(UTC)
    ms = int(now.timestamp() * 1000)
    store.statuses.apply(
        [
            Status(DEV, True, ms, firmware="speakerctl-agent 0.1.0", volume=60, temperature_c=34.0),
            Status(OTHER, True, ms, power=Power("battery", 48), amplifier="fault", clock_offset_ms=5200),
        ],
        now,
    )
    bulletin = store.bulletins.add(
        "Bản tin sáng", "ef" * 32, "opus", "ogg", 24, 60_000, 180_000, "ban-tin.mp3", "admin", now
    )
    start = now - timedelta(minutes=3)
    store.broadcasts.create("bc-test", bulletin.id, 1, ["st-ke-sach-an-my"], [DEV, OTHER], start, start, now)
    t = int(start.timestamp() * 1000)
    store.deliveries.apply(
        [
            DeliveryUpdate("bc-test", DEV, DeliveryStatus.ACCEPTED, None, "", t + 300),
            DeliveryUpdate("bc-test", DEV, DeliveryStatus.PLAYING, None, "", t + 1_000),
            DeliveryUpdate("bc-test", DEV, DeliveryStatus.FINISHED, None, "", t + 61_000),
            DeliveryUpdate("bc-test", OTHER, DeliveryStatus.ACCEPTED, None, "", t + 300),
            DeliveryUpdate("bc-test", OTHER, DeliveryStatus.FAILED, "amplifier_fault", "", t + 900),
        ]
    )
    store.broadcasts.finish("bc-test", BroadcastState.INCOMPLETE, now)
    evaluate(store, now, HealthPolicy.from_settings(settings))
    store.close()
    yield CliRunner(), ["--data-dir", str(settings.data_dir)], broadcast_day(start)


def broadcast_day(at: datetime) -> str:
    from zoneinfo import ZoneInfo

    return at.astimezone(ZoneInfo("Asia/Ho_Chi_Minh")).date().isoformat()


def _code(runner: CliRunner, args: list[str]) -> int:
    """The exit code `speakerctl` would give: errors mapped as cli.main maps them."""
    result = runner.invoke(app, args)
    error = result.exception
    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    return exit_code(error) if isinstance(error, SpeakerctlError) else result.exit_code


def _ok(runner: CliRunner, args: list[str]) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


def test_alerts_list_and_fleet_status(data: tuple[CliRunner, list[str], str]) -> None:
    runner, opts, _ = data
    alerts = json.loads(
        _ok(runner, [*opts, "alerts", "list", "--open", "--zone", "st-ke-sach-an-my", "--json"])
    )
    assert {(a["kind"], a["device"]) for a in alerts} == {
        ("on_battery", OTHER),
        ("amplifier_fault", OTHER),
        ("clock_drift", OTHER),
        ("failed_to_sound", OTHER),
    }
    assert "4 alerts" in _ok(runner, [*opts, "alerts", "list", "--zone", "st-ke-sach-an-my"])
    status = json.loads(_ok(runner, [*opts, "fleet", "status", "--json"]))
    assert status["totals"] == {"online": 2, "offline": 277, "fault": 1}
    assert datetime.fromisoformat(status["last_broadcast"].pop("created_at")).tzinfo is not None
    assert status["last_broadcast"] == {
        "id": "bc-test",
        "state": "incomplete",
        "targets": ["st-ke-sach-an-my"],
        "targeted": 2,
        "reached": 2,
        "played": 1,
    }
    ke_sach = next(z for z in status["zones"] if z["id"] == "st-ke-sach")
    assert (ke_sach["online"], ke_sach["fault"], ke_sach["last_played"]) == (2, 1, 1)
    table = _ok(runner, [*opts, "fleet", "status"])
    assert "Kế Sách" in table and "2 online, 277 offline, 1 with a fault" in table


def test_devices_filters_show_and_locate(data: tuple[CliRunner, list[str], str]) -> None:
    runner, opts, _ = data
    online = json.loads(_ok(runner, [*opts, "devices", "list", "--state", "online", "--json"]))
    assert [d["id"] for d in online] == [DEV, OTHER]
    faulty = json.loads(_ok(runner, [*opts, "devices", "list", "--fault", "--json"]))
    assert [d["id"] for d in faulty] == [OTHER] and "amplifier_fault" in faulty[0]["open_alerts"]
    offline = json.loads(
        _ok(runner, [*opts, "devices", "list", "--state", "offline", "--zone", "st-ke-sach", "--json"])
    )
    assert DEV not in {d["id"] for d in offline} and offline
    assert _code(runner, [*opts, "devices", "list", "--state", "sleeping"]) == 2
    shown = json.loads(_ok(runner, [*opts, "devices", "show", OTHER, "--json"]))
    assert shown["clock_offset_ms"] == 5200 and shown["history"][0]["battery_pct"] == 48
    assert {a["kind"] for a in shown["alerts"]} >= {"on_battery", "clock_drift"}
    assert "recent history" in _ok(runner, [*opts, "devices", "show", DEV])
    where = json.loads(_ok(runner, [*opts, "devices", "locate", DEV, "--json"]))
    assert where["lat"] and where["map"].startswith("https://www.openstreetmap.org/?mlat=")
    assert "Kế Sách" in where["zone_path"]
    assert "openstreetmap" in _ok(runner, [*opts, "devices", "locate", DEV])


def test_report_per_zone_and_play_log_exports(data: tuple[CliRunner, list[str], str], tmp_path: Path) -> None:
    runner, opts, day = data
    report = json.loads(_ok(runner, [*opts, "report", "bc-test", "--json"]))
    assert report["zones"] == [
        {
            "zone": "st-ke-sach",
            "name": "Kế Sách",
            "targeted": 2,
            "reached": 2,
            "played": 1,
            "failed": 1,
            "missed": 0,
            "reasons": {"amplifier_fault": 1},
        }
    ]
    assert "per zone" in _ok(runner, [*opts, "report", "bc-test"])
    out = tmp_path / "nhat-ky.csv"
    _ok(
        runner,
        [
            *opts,
            "report",
            "--since",
            day,
            "--until",
            day,
            "--zone",
            "st-ke-sach",
            "--format",
            "csv",
            "--output",
            str(out),
        ],
    )
    rows = list(csv.DictReader(out.read_text(encoding="utf-8-sig").splitlines()))
    assert [(r["cluster_id"], r["district"], r["outcome"]) for r in rows] == [(DEV, "Kế Sách", "finished")]
    assert out.read_bytes().startswith(b"\xef\xbb\xbf")
    xlsx = tmp_path / "nhat-ky.xlsx"
    _ok(runner, [*opts, "report", "--since", day, "--format", "xlsx", "--output", str(xlsx)])
    assert xlsx.read_bytes()[:2] == b"PK"
    log = json.loads(_ok(runner, [*opts, "report", "--since", day, "--json"]))
    assert log[0]["bulletin"] == "Bản tin sáng"
    assert _code(runner, [*opts, "report"]) == 2
    assert _code(runner, [*opts, "report", "--since", "hôm qua"]) == 2
    assert _code(runner, [*opts, "report", "--since", day, "--format", "csv"]) == 2


def test_the_play_log_fits_a_100_column_terminal_in_vietnamese(
    data: tuple[CliRunner, list[str], str],
) -> None:
    runner, opts, day = data
    result = runner.invoke(
        app, [*opts, "report", "--since", day], env={"SPEAKERCTL_LANG": "vi", "COLUMNS": "100"}
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert max(len(line) for line in lines) <= 100 and "…" not in result.output
    assert any(DEV in line and "bc-test" in line and "Bản tin" in line for line in lines), result.output
    assert "Mã cụm loa" in result.output and "distr" not in result.output  # headers in words, translated


def _fleet(url: str, data_dir: Path, cache: Path) -> contextlib.AbstractContextManager[str]:
    args = [
        "--data-dir",
        str(data_dir),
        "--broker",
        url,
        "simulate",
        "--count",
        "3",
        "--cache-dir",
        str(cache),
    ]
    return fleet_process(args)


def test_remote_actions_from_the_cli_are_acknowledged_or_time_out(tmp_path: Path) -> None:
    runner, data_dir = CliRunner(), tmp_path / "data"
    load_or_create_signer(data_dir / "keys")  # the clusters are provisioned with its public key
    first = load_inventory().devices[0].id  # `simulate --count 3` runs the inventory's first three
    with EmbeddedBroker() as broker, _fleet(broker.url, data_dir, tmp_path / "fleet") as ready:
        assert ready.startswith("ready: 3 clusters")
        opts = ["--data-dir", str(data_dir), "--broker", broker.url]
        volume = json.loads(_ok(runner, [*opts, "devices", "set-volume", first, "35", "--json"]))
        assert volume["ok"] and volume["action"] == "volume 35"
        assert "round trip" in _ok(runner, [*opts, "devices", "ping", first])
        absent = [*opts, "devices", "reboot", "st-vinh-chau-vinh-tan-02", "--timeout", "0.5"]
        assert _code(runner, absent) == 7
        assert _code(runner, [*opts, "devices", "set-volume", first, "140"]) == 2
    store = open_store(Settings(data_dir=data_dir), sync_inventory=False)
    assert [(a.action, a.outcome) for a in store.audit.entries()] == [
        ("reboot", "timeout"),
        ("ping", "ok"),
        ("set_volume 35", "ok"),
    ]
    store.close()


def test_serve_with_http_serves_the_console_and_metrics_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    with EmbeddedBroker() as broker:
        cmd = [sys.executable, "-m", "speakerctl", "--data-dir", str(tmp_path), "--broker", broker.url,
               "serve", "--http", f"127.0.0.1:{port}"]  # fmt: skip
        with subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True) as proc:
            try:
                metrics = _get(f"http://127.0.0.1:{port}/metrics", proc)
                page = _get(f"http://127.0.0.1:{port}/", proc)
            finally:
                proc.send_signal(signal.SIGTERM)
                _, err = proc.communicate(timeout=30)
    assert 'speakerctl_devices{state="offline"} 279' in metrics
    assert "Đăng nhập" in page and "Bảng điều khiển loa truyền thanh" in page  # the console: sign in first
    assert proc.returncode == 0 and f"operator console on http://127.0.0.1:{port}/" in err
    assert "controller stopped" in err and "Traceback" not in err


def _get(url: str, proc: subprocess.Popen[str], timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while True:
        assert proc.poll() is None, "speakerctl serve exited early"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return str(response.read().decode())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
