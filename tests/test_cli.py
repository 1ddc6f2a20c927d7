"""The CLI, driven as a broadcaster would: CliRunner for each command, real processes for the fleet."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from speakerctl.app.runtime import fleet_process
from speakerctl.audio import generate_tone
from speakerctl.broker.embedded import EmbeddedBroker
from speakerctl.cli.common import console_err
from speakerctl.cli.main import app, report_error
from speakerctl.errors import NotFound

CITY = "st-tp-soc-trang"  # Sóc Trăng city: the inventory's first 30 clusters


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[tuple[CliRunner, list[str]]]:
    """A runner and the global options pointing at a fresh data directory."""
    yield CliRunner(), ["--data-dir", str(tmp_path / "data")]


def _ok(runner: CliRunner, args: list[str]) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


def test_zones_list_shows_the_tree_with_vietnamese_names(cli: tuple[CliRunner, list[str]]) -> None:
    runner, opts = cli
    out = _ok(runner, [*opts, "zones", "list"])
    assert "Sóc Trăng" in out and "Kế Sách" in out and "279 clusters" in out
    zones = json.loads(_ok(runner, [*opts, "zones", "list", "--json"]))
    assert {"id": "soc-trang", "name": "Sóc Trăng"}.items() <= zones[0].items()


def test_devices_list_filters_by_zone_and_show_gives_the_path(cli: tuple[CliRunner, list[str]]) -> None:
    runner, opts = cli
    rows = json.loads(_ok(runner, [*opts, "devices", "list", "--zone", "st-ke-sach", "--json"]))
    assert rows and all(r["zone"].startswith("st-ke-sach") for r in rows)
    assert not any(r["online"] for r in rows)
    shown = json.loads(_ok(runner, [*opts, "devices", "show", rows[0]["id"], "--json"]))
    assert shown["zone_path"].startswith("Sóc Trăng › Kế Sách")
    assert "clusters" in _ok(runner, [*opts, "devices", "list", "--zone", "st-ke-sach"])


def test_bulletin_add_is_deduplicated_and_listed(cli: tuple[CliRunner, list[str]], tmp_path: Path) -> None:
    runner, opts = cli
    tone = generate_tone(1.5, path=tmp_path / "chuong.wav")
    first = json.loads(_ok(runner, [*opts, "bulletin", "add", str(tone), "--title", "Chuông", "--json"]))
    again = json.loads(_ok(runner, [*opts, "bulletin", "add", str(tone), "--json"]))
    assert first[0]["created"] and not again[0]["created"]
    assert first[0]["id"] == again[0]["id"]
    listed = json.loads(_ok(runner, [*opts, "bulletin", "list", "--json"]))
    assert [b["title"] for b in listed] == ["Chuông"]


def _speakerctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "speakerctl", *args], capture_output=True, text=True, timeout=120
    )


def test_errors_are_one_line_with_a_hint_and_a_meaningful_exit_code(tmp_path: Path) -> None:
    data = ["--data-dir", str(tmp_path)]
    junk = tmp_path / "not-audio.mp3"
    junk.write_text("đây không phải âm thanh")
    bad_audio = _speakerctl(*data, "bulletin", "add", str(junk))
    assert bad_audio.returncode == 6 and "not-audio.mp3" in bad_audio.stderr
    assert "Traceback" not in bad_audio.stderr
    unknown = _speakerctl(*data, "devices", "show", "khong-ton-tai")
    assert unknown.returncode == 5 and "khong-ton-tai" in unknown.stderr
    no_broker = _speakerctl(*data, "--broker", "mqtt://127.0.0.1:9", "broadcast", "1", "--to", CITY)
    assert no_broker.returncode in (5, 7), no_broker.stderr  # no bulletin 1, or no broker: both clear
    assert "error:" in no_broker.stderr and "Traceback" not in no_broker.stderr
    bad_url = _speakerctl(*data, "--broker", "http://x", "zones", "list")
    assert bad_url.returncode == 4 and "scheme" in bad_url.stderr


def _fleet(url: str, cache: Path, trust: Path) -> contextlib.AbstractContextManager[str]:
    """30 simulated clusters in their own process; yields the ready line."""
    args = ["--broker", url, "simulate", "--count", "30", "--time-scale", "10", "--cache-dir", str(cache),
            "--trust", str(trust)]  # fmt: skip
    return fleet_process(args)


def test_broadcast_and_report_against_a_simulated_fleet_process(
    cli: tuple[CliRunner, list[str]], tmp_path: Path
) -> None:
    runner, opts = cli
    tone = generate_tone(2.0, path=tmp_path / "tin.wav")
    bulletin = json.loads(_ok(runner, [*opts, "bulletin", "add", str(tone), "--json"]))[0]["id"]
    _ok(runner, [*opts, "keys", "init"])
    trust = tmp_path / "data" / "keys" / "trusted.pub"
    with EmbeddedBroker() as broker, _fleet(broker.url, tmp_path / "fleet", trust) as ready:
        assert ready.startswith("ready: 30 clusters online")
        args = [*opts, "--broker", broker.url, "broadcast", str(bulletin), "--to", CITY, "--json"]
        outcome = json.loads(_ok(runner, args))
        assert outcome["played"] == outcome["total"] == 30
        # A commune outside the simulated 30 never answers: the broadcast says so and exits 3.
        partial = runner.invoke(
            app,
            [*args[:-1], "--to", "st-vinh-chau-phuong-1", "--timeout", "2", "--json"],
        )
    assert partial.exit_code == 3
    report = json.loads(_ok(runner, [*opts, "report", outcome["broadcast"], "--json"]))
    assert report["counts"]["finished"] == 30 and report["state"] == "complete"
    assert "30/30 played" in _ok(runner, [*opts, "report", outcome["broadcast"]])


def test_demo_reaches_every_simulated_cluster(tmp_path: Path) -> None:
    demo = _speakerctl(
        "demo", "--seconds", "1", "--count", "30", "--time-scale", "4", "--workdir", str(tmp_path / "demo")
    )
    assert demo.returncode == 0, demo.stderr
    assert "30/30 played" in demo.stdout


@pytest.mark.parametrize("command", [["zones", "list"], ["devices", "list"], ["fleet", "status"]])
def test_read_only_commands_never_take_the_write_lock(
    cli: tuple[CliRunner, list[str]], tmp_path: Path, command: list[str]
) -> None:
    runner, opts = cli
    _ok(runner, [*opts, "zones", "list"])  # creates the database and loads the inventory once
    writer = sqlite3.connect(tmp_path / "data" / "speakerctl.db", timeout=0, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")  # another process (serve) holds the write lock
        writer.execute("PRAGMA busy_timeout = 0")
        _ok(runner, [*opts, *command, "--json"])
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def test_stored_text_cannot_drive_the_terminal(cli: tuple[CliRunner, list[str]], tmp_path: Path) -> None:
    runner, opts = cli
    tone = generate_tone(1.0, path=tmp_path / "tin.wav")
    title = "Tin\x1b]0;owned\x07 \x1b[2J[bold red]giả[/] \u202eabc\x9b"
    _ok(runner, [*opts, "bulletin", "add", str(tone), "--title", title])
    for command in (["bulletin", "list"], ["bulletin", "show", "1"], ["bulletin", "rm", "1"]):
        out = _ok(runner, [*opts, *command])
        assert not any(c in out for c in "\x1b\x07\u202e\x9b"), (command, out)
    visible = "Tin\\x1b]0;owned\\x07 \\x1b[2J[bold red]giả[/] \\u202eabc\\x9b"
    assert visible in out  # `bulletin rm` quotes the whole title on one line


def test_an_error_quoting_markup_or_escapes_prints_as_is() -> None:
    with console_err.capture() as captured:
        code = report_error(NotFound("no device '[/]\x1b[31m'", hint="see [bold]zones[/]"))
    assert code == 5
    assert "'[/]\\x1b[31m'" in captured.get() and "see [bold]zones[/]" in captured.get()


def test_ids_in_tables_are_never_cut(cli: tuple[CliRunner, list[str]]) -> None:
    runner, opts = cli
    rows = json.loads(_ok(runner, [*opts, "devices", "list", "--zone", "st-ke-sach", "--json"]))
    table = _ok(runner, [*opts, "devices", "list", "--zone", "st-ke-sach"])  # 80 columns
    assert all(r["id"] in table for r in rows)
    issued = _ok(runner, [*opts, "devices", "provision", rows[0]["id"]])
    assert rows[0]["id"] in issued and "…" not in issued


def test_the_data_directory_is_for_its_owner_alone(cli: tuple[CliRunner, list[str]], tmp_path: Path) -> None:
    runner, opts = cli
    tone = generate_tone(1.0, path=tmp_path / "tin.wav")
    _ok(runner, [*opts, "bulletin", "add", str(tone)])
    _ok(runner, [*opts, "keys", "init"])
    _ok(runner, [*opts, "devices", "provision", "--controller"])
    data = tmp_path / "data"
    found = [data, *data.rglob("*")]
    assert any(p.name.endswith("-wal") for p in found) or any(p.suffix == ".db" for p in found)
    exposed = [
        f"{p.relative_to(tmp_path)} {p.stat().st_mode & 0o777:o}"
        for p in found
        if p.stat().st_mode & 0o077 and p.name != "trusted.pub"  # the public key is for anyone
    ]
    assert not exposed
