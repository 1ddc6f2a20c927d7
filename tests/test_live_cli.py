"""`speakerctl live` as an operator runs it: against a simulated fleet process and a real broker."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner
from waiting import wait_until_sync

from speakerctl.app.runtime import fleet_process
from speakerctl.audio import generate_tone
from speakerctl.broker.embedded import EmbeddedBroker
from speakerctl.cli.main import app
from speakerctl.errors import NotAllowed

CITY = "st-tp-soc-trang"  # Sóc Trăng city: the inventory's first 30 clusters


def _speakerctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "speakerctl", *args], capture_output=True, text=True, timeout=120
    )


def _ok(runner: CliRunner, args: list[str]) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


def _rows(db: Path, query: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as conn:
        return list(conn.execute(query))


def test_live_file_reaches_the_fleet_and_ctrl_c_stops_every_cluster(tmp_path: Path) -> None:
    runner, opts = CliRunner(), ["--data-dir", str(tmp_path / "data")]
    assert runner.invoke(app, [*opts, "keys", "init"]).exit_code == 0
    trust = tmp_path / "data" / "keys" / "trusted.pub"
    tone = generate_tone(2.0, path=tmp_path / "tone.wav")
    fleet = ["simulate", "--count", "30", "--cache-dir", str(tmp_path / "fleet"), "--trust", str(trust)]
    with EmbeddedBroker() as broker, fleet_process(["--broker", broker.url, *fleet]) as ready:
        assert ready.startswith("ready: 30 clusters online")
        args = [*opts, "--broker", broker.url, "live", "file", str(tone), "--to", CITY, "--delay", "1500"]
        result = runner.invoke(app, [*args, "--json"])
        assert result.exit_code == 0, (result.output, result.exception)
        outcome = json.loads(result.output)
        assert outcome["end_reason"] == "finished" and outcome["frames"] >= 5
        played = [c for c in outcome["clusters"].values() if c["played"] == outcome["frames"]]
        assert len(played) == 30, [
            (c["played"], c["lost"], c["underruns"]) for c in outcome["clusters"].values()
        ]
        # A long stream, interrupted as an operator would with Ctrl-C.
        long = generate_tone(60.0, path=tmp_path / "long.wav")
        cmd = [sys.executable, "-m", "speakerctl", *args[:-5], str(long), *args[-4:]]
        process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        db = tmp_path / "data" / "speakerctl.db"
        # The clusters' statuses (which the running command stores) say when they are playing it.
        running = "SELECT id FROM live_streams WHERE ended_at IS NULL"
        query = f"SELECT count(*) FROM devices WHERE playing IN ({running})"
        wait_until_sync(lambda: _rows(db, query)[0][0] == 30, "every cluster playing the stream")
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
        assert process.returncode == 0, err
        assert "ended (stopped)" in out
        # Once more, stopped from another terminal with `live stop`.
        process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_until_sync(lambda: _rows(db, query)[0][0] == 30, "every cluster playing the second stream")
        stopped = _speakerctl(*opts, "--broker", broker.url, "live", "stop")
        assert stopped.returncode == 0 and "stopped live-" in stopped.stdout, stopped.stderr
        out, err = process.communicate(timeout=60)
        assert process.returncode == 0 and "ended (stopped)" in out, err
    reasons = _rows(db, "SELECT reason, count(*) FROM live_clusters WHERE reason != '' GROUP BY reason")
    assert dict(reasons) == {"stopped": 90}  # 30 clusters × 3 streams, each ended by a live_stop
    streams = json.loads(_ok(runner, [*opts, "live", "list", "--json"]))
    assert [s["end_reason"] for s in streams] == ["stopped", "stopped", "finished"]
    assert all(s["clusters_played"] == 30 and s["actor"] for s in streams)
    detail = json.loads(_ok(runner, [*opts, "live", "show", streams[2]["stream"], "--json"]))
    assert detail["source"] == str(tone) and len([c for c in detail["clusters"] if c["played"]]) == 30
    assert "finished" in _ok(runner, [*opts, "live", "list"])


def test_bad_sources_are_one_line_errors_with_an_exit_code(tmp_path: Path) -> None:
    data = ["--data-dir", str(tmp_path)]
    with EmbeddedBroker() as broker:
        unreachable = _speakerctl(
            *data, "--broker", broker.url, "live", "relay", "http://127.0.0.1:9/vov1", "--to", CITY
        )
        junk = tmp_path / "page.html"
        junk.write_text("<html>không phải âm thanh</html>")
        not_audio = _speakerctl(*data, "--broker", broker.url, "live", "file", str(junk), "--to", CITY)
        nothing = _speakerctl(*data, "--broker", broker.url, "live", "stop")
        no_mic = _speakerctl(
            *data, "--broker", broker.url, "live", "mic", "--to", CITY, "--device", "khong-co"
        )
    assert unreachable.returncode == 6 and "cannot reach" in unreachable.stderr, unreachable.stderr
    assert not_audio.returncode == 6 and "not an audio stream" in not_audio.stderr, not_audio.stderr
    assert no_mic.returncode == 6 and "no microphone" in no_mic.stderr, no_mic.stderr
    for result in (unreachable, not_audio, no_mic):
        assert "Traceback" not in result.stderr and "hint:" in result.stderr
    assert nothing.returncode == 0 and "no live stream is running" in nothing.stdout
    bad_for = _speakerctl(*data, "live", "file", str(junk), "--to", CITY, "--for", "soon")
    assert bad_for.returncode == 2 and "soon" in bad_for.stderr
    relay = [*data, "live", "relay", "http://127.0.0.1:9/vov1", "--to", CITY]
    no_filler = _speakerctl(*relay, "--filler", str(tmp_path / "khong-co.mp3"))
    assert no_filler.returncode == 2 and "no such filler file" in no_filler.stderr, no_filler.stderr


def test_live_outside_the_users_zone_is_refused_before_anything_is_captured(tmp_path: Path) -> None:
    runner, opts = CliRunner(), ["--data-dir", str(tmp_path / "data")]
    _ok(runner, [*opts, "keys", "init"])
    add = [
        *opts,
        "user",
        "add",
        "lan",
        "--role",
        "operator",
        "--zone",
        "st-ke-sach-ke-an",
        "--password-stdin",
    ]
    assert runner.invoke(app, add, input="mat khau cua lan\n").exit_code == 0
    login = runner.invoke(app, [*opts, "login", "lan", "--password-stdin"], input="mat khau cua lan\n")
    assert login.exit_code == 0, login.output
    # No broker runs at this address: a refusal must come first, from the access rule alone.
    args = [*opts, "--broker", "mqtt://127.0.0.1:9", "live", "relay", "http://127.0.0.1:9/vov1.ogg"]
    refused = runner.invoke(app, [*args, "--to", CITY])
    assert isinstance(refused.exception, NotAllowed), (refused.output, refused.exception)
    assert "lan acts on st-ke-sach-ke-an only" in str(refused.exception)


def test_a_live_emergency_asks_for_confirmation_like_an_emergency_bulletin(tmp_path: Path) -> None:
    data = ["--data-dir", str(tmp_path)]
    tone = generate_tone(1.0, path=tmp_path / "alarm.wav")
    # No broker runs at this address: the question must come before anything is captured or sent.
    args = [*data, "--broker", "mqtt://127.0.0.1:9", "live", "file", str(tone), "--to", CITY]
    asked = _speakerctl(*args, "--priority", "emergency")
    assert asked.returncode == 10, asked.stderr
    assert "not confirmed: Go live as an emergency to 30 clusters in 10 communes?" in asked.stderr
    assert "--yes" in asked.stderr
    confirmed = _speakerctl(*args, "--priority", "emergency", "--yes")
    assert confirmed.returncode != 10 and "not confirmed" not in confirmed.stderr, confirmed.stderr
