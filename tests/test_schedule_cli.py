"""`speakerctl schedule …` with a pinned clock and fixed dates, through CliRunner."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner, Result
from waiting import wait_until_sync

from speakerctl.audio import generate_tone
from speakerctl.broker.embedded import EmbeddedBroker
from speakerctl.cli import common
from speakerctl.cli.main import app, exit_code
from speakerctl.clock import FixedClock
from speakerctl.errors import NotFound, SpeakerctlError

VN = ZoneInfo("Asia/Ho_Chi_Minh")
NOW = datetime(2026, 12, 31, 12, 0, tzinfo=VN)  # a Thursday


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[CliRunner, list[str]]:
    """A runner on a fresh data directory with one bulletin (id 1), the clock pinned at NOW."""
    monkeypatch.setattr(common.state, "clock", FixedClock(NOW))
    runner, opts = CliRunner(), ["--data-dir", str(tmp_path / "data")]
    tone = generate_tone(2.0, path=tmp_path / "ban-tin.wav")
    _ok(runner, [*opts, "bulletin", "add", str(tone), "--title", "Bản tin sáng"])
    return runner, opts


def _ok(runner: CliRunner, args: list[str]) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


def _code(result: Result) -> int:
    """The exit code `speakerctl` gives, as cli.main maps the error the command raised."""
    if isinstance(result.exception, SpeakerctlError):
        return exit_code(result.exception)
    return result.exit_code


def _add(runner: CliRunner, opts: list[str], *args: str) -> dict[str, object]:
    return json.loads(_ok(runner, [*opts, "schedule", "add", "1", "--json", *args]))  # type: ignore[no-any-return]


def test_add_list_show_pause_resume_rm(cli: tuple[CliRunner, list[str]]) -> None:
    runner, opts = cli
    added = _add(runner, opts, "--to", "st-ke-sach", "--weekly", "05:00,17:00", "--days", "mon-sat")
    assert added["next_at"] == "2026-12-31T17:00:00+07:00"
    sid = str(added["id"])
    rows = json.loads(_ok(runner, [*opts, "schedule", "list", "--json"]))
    assert [(r["id"], r["next_at"]) for r in rows] == [(sid, "2026-12-31T17:00:00+07:00")]
    shown = json.loads(_ok(runner, [*opts, "schedule", "show", sid, "--json"]))
    assert shown["upcoming"] == [
        "2026-12-31T17:00:00+07:00",
        "2027-01-01T05:00:00+07:00",
        "2027-01-01T17:00:00+07:00",
        "2027-01-02T05:00:00+07:00",
        "2027-01-02T17:00:00+07:00",
    ]
    _ok(runner, [*opts, "schedule", "pause", sid])
    assert "paused" in _ok(runner, [*opts, "schedule", "list"])
    _ok(runner, [*opts, "schedule", "resume", sid])
    assert json.loads(_ok(runner, [*opts, "schedule", "list", "--json"]))[0]["paused"] is False
    _ok(runner, [*opts, "schedule", "rm", sid])
    assert json.loads(_ok(runner, [*opts, "schedule", "list", "--json"])) == []
    missing = runner.invoke(app, [*opts, "schedule", "show", sid])
    assert _code(missing) == 5


def test_overlap_is_reported_with_the_winner(cli: tuple[CliRunner, list[str]]) -> None:
    runner, opts = cli
    daily = _add(runner, opts, "--to", "st-ke-sach", "--daily", "05:00")
    # A commune inside the district, at the same time, as an emergency: it wins.
    out = _ok(
        runner,
        [
            *opts,
            "schedule",
            "add",
            "1",
            "--to",
            "st-ke-sach-an-my",
            "--at",
            "2027-01-01 05:00:01",
            "--priority",
            "emergency",
            "--yes",
        ],
    )
    text = " ".join(out.split())  # rich wraps long lines
    assert f"overlaps {daily['id']}" in text and "this one wins" in text and "emergency outranks" in text
    same = _add(
        runner, opts, "--to", "st-ke-sach-an-my", "--daily", "05:00:01", "--repeat", "3", "--gap", "30"
    )
    verdicts = {o["existing"]: (o["winner"], o["why"]) for o in same["overlaps"]}  # type: ignore[attr-defined]
    assert verdicts[daily["id"]] == (daily["id"], "same level: first come, first served")
    assert len(verdicts) == 2  # and the emergency, which wins too


def test_preview_resolves_priorities_for_a_day(cli: tuple[CliRunner, list[str]]) -> None:
    runner, opts = cli
    _add(runner, opts, "--to", "st-ke-sach", "--daily", "05:00", "--on-preempt", "resume")
    _add(
        runner, opts, "--to", "st-ke-sach", "--at", "2027-01-01 05:00:01", "--priority", "emergency", "--yes"
    )
    rows = json.loads(_ok(runner, [*opts, "schedule", "preview", "--day", "2027-01-01", "--json"]))
    assert [(r["start"][11:19], r["priority"], r["note"]) for r in rows] == [
        ("05:00:00", "normal", ""),
        ("05:00:01", "emergency", ""),
        ("05:00:03", "normal", "resumed"),
    ]
    assert "Asia/Ho_Chi_Minh" in _ok(runner, [*opts, "schedule", "preview", "--day", "2027-01-01"])


def test_bad_input_says_what_to_fix(cli: tuple[CliRunner, list[str]]) -> None:
    runner, opts = cli
    both = runner.invoke(
        app, [*opts, "schedule", "add", "1", "--to", "st-ke-sach", "--daily", "05:00", "--cron", "0 5 * * *"]
    )
    assert _code(both) == 2 and "exactly one of" in str(both.exception)
    weekly = runner.invoke(app, [*opts, "schedule", "add", "1", "--to", "st-ke-sach", "--weekly", "05:00"])
    assert _code(weekly) == 2 and "--days" in str(weekly.exception)
    nowhere = runner.invoke(app, [*opts, "schedule", "add", "1", "--to", "xa-khong-co", "--daily", "05:00"])
    assert _code(nowhere) == 5


@pytest.mark.parametrize(
    "rule",
    [
        ["--at", "2026-12-31 11:59"],  # a minute before NOW
        ["--cron", "0 5 30 2 *"],  # 30 February
        ["--cron", "0 5 * * 1", "--from", "2027-01-05", "--until", "2027-01-09"],  # no Monday in the window
        ["--daily", "05:00", "--until", "2026-12-30"],  # ended yesterday
        ["--weekly", "05:00", "--days", ""],  # no days
        ["--daily", "05:00", "--from", "2027-02-01", "--until", "2027-01-01"],  # until before from
    ],
)
def test_a_schedule_that_can_never_fire_is_refused(cli: tuple[CliRunner, list[str]], rule: list[str]) -> None:
    runner, opts = cli
    refused = runner.invoke(app, [*opts, "schedule", "add", "1", "--to", "st-ke-sach", *rule])
    assert _code(refused) == 2, (refused.output, refused.exception)
    assert "Traceback" not in refused.output
    assert not json.loads(_ok(runner, [*opts, "schedule", "list", "--json"]))


def test_a_leap_day_schedule_is_accepted(cli: tuple[CliRunner, list[str]]) -> None:
    runner, opts = cli
    added = _add(runner, opts, "--to", "st-ke-sach", "--cron", "0 5 29 2 *")
    assert str(added["next_at"]).startswith("2028-02-29T05:00")


@contextlib.contextmanager
def _process(*args: str, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[str]]:
    """`speakerctl ARGS` in a process of its own, stopped by its PID."""
    cmd = [sys.executable, "-m", "speakerctl", *args]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env) as proc:
        try:
            yield proc
        finally:
            proc.terminate()
            proc.wait(15)


SERVE_STARTS_WITHIN_S = 30
"""Air time is this far after the fleet is ready: `serve` must start and push ahead before it, even when
the machine is busy (it pushes only when it starts, so the schedule must be in the book by then)."""


def test_serve_runs_the_schedules_against_a_fleet_process(tmp_path: Path) -> None:
    runner, opts = CliRunner(), ["--data-dir", str(tmp_path / "data")]
    tone = generate_tone(1.0, path=tmp_path / "tin.wav")
    bulletin = json.loads(_ok(runner, [*opts, "bulletin", "add", str(tone), "--json"]))[0]["id"]
    _ok(runner, [*opts, "keys", "init"])
    trust = str(tmp_path / "data" / "keys" / "trusted.pub")
    env = os.environ | {"SPEAKERCTL_SCHEDULE_LEAD_S": "3"}
    with EmbeddedBroker() as broker:
        fleet_args = [
            "--broker",
            broker.url,
            "simulate",
            "--count",
            "30",
            "--cache-dir",
            str(tmp_path / "fleet"),
        ]
        with _process(*fleet_args, "--trust", trust) as fleet:
            assert fleet.stdout is not None and fleet.stdout.readline().startswith("ready: 30 clusters")
            at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=SERVE_STARTS_WITHIN_S)
            added = _add_json(runner, opts, str(bulletin), "--to", "st-tp-soc-trang", "--at", at.isoformat())
            sid = str(added["id"])
            with _process(*opts, "--broker", broker.url, "serve", env=env):
                wait_until_sync(lambda: _runs(runner, opts, sid) != [], "serve to push the schedule ahead")
                assert datetime.now(UTC) < at, "serve started too late to push ahead; raise the margin"
                wait_until_sync(lambda: _played(runner, opts, sid), "30 clusters to play it", timeout=120)
    shown = json.loads(_ok(runner, [*opts, "schedule", "show", sid, "--json"]))
    assert [(r["state"], r["detail"]) for r in shown["runs"]] == [
        ("aired", "pushed ahead; aired from the clusters' caches")  # pushed at once (24 h horizon)
    ]
    report = json.loads(_ok(runner, [*opts, "report", shown["runs"][0]["broadcast"], "--json"]))
    assert report["counts"]["finished"] == 30


def _add_json(runner: CliRunner, opts: list[str], *args: str) -> dict[str, object]:
    return json.loads(_ok(runner, [*opts, "schedule", "add", *args, "--json"]))  # type: ignore[no-any-return]


def _runs(runner: CliRunner, opts: list[str], schedule_id: str) -> list[dict[str, str]]:
    return json.loads(_ok(runner, [*opts, "schedule", "show", schedule_id, "--json"]))["runs"]  # type: ignore[no-any-return]


def _played(runner: CliRunner, opts: list[str], schedule_id: str) -> bool:
    runs = _runs(runner, opts, schedule_id)
    if not runs or not runs[0]["broadcast"]:
        return False
    result = runner.invoke(app, [*opts, "report", runs[0]["broadcast"], "--json"])
    if isinstance(result.exception, NotFound):  # the run is recorded a moment before its broadcast
        return False
    assert result.exit_code == 0, (result.output, result.exception)
    return bool(json.loads(result.output)["counts"].get("finished", 0) == 30)
