"""`speakerctl bulletin …`, every command through CliRunner against a fresh data directory."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from speakerctl.app.context import open_store
from speakerctl.audio import PROFILES, VOICES, generate_tone
from speakerctl.cli import bulletin as bulletin_cli
from speakerctl.cli.main import app, exit_code
from speakerctl.config import Settings
from speakerctl.controller import library
from speakerctl.errors import SpeakerctlError
from speakerctl.protocol import Priority

T0 = datetime(2026, 11, 29, 5, 0, tzinfo=UTC)
ZONE = "st-tp-soc-trang-phuong-1"


class Cli:
    """A runner bound to one data directory; exit codes as `speakerctl` maps project errors."""

    def __init__(self, data: Path) -> None:
        self.runner = CliRunner()
        self.data = data

    def run(self, *args: str) -> Any:
        result = self.runner.invoke(app, ["--data-dir", str(self.data), "bulletin", *args])
        if isinstance(result.exception, SpeakerctlError):
            result.exit_code = exit_code(result.exception)
        return result

    def ok(self, *args: str) -> str:
        result = self.run(*args)
        assert result.exit_code == 0, (result.output, result.exception)
        return str(result.stdout)

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--json"))

    def content(self) -> list[Path]:
        root = self.data / "content"
        return (
            [p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")]
            if root.exists()
            else []
        )


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path / "data")


@pytest.fixture
def tone(tmp_path: Path) -> Path:
    return generate_tone(1.2, freq_hz=600, path=tmp_path / "chuong-bao.wav")


def test_add_with_profile_and_chime(cli: Cli, tone: Path) -> None:
    (plain,) = cli.json("add", str(tone), "--title", "Chuông")
    (chimed,) = cli.json("add", str(tone), "--chime", "--profile", "music")
    assert plain["created"] and chimed["created"] and plain["id"] != chimed["id"]
    assert (plain["title"], plain["profile"], plain["source"]) == ("Chuông", "speech", "chuong-bao.wav")
    assert chimed["profile"] == "music" and chimed["duration_s"] > plain["duration_s"] + 4
    for row in (plain, chimed):
        assert abs(row["loudness_lufs"] + 16) <= 1 and row["true_peak_dbtp"] <= -2
    assert "already in the library as bulletin 1" in cli.ok("add", str(tone))


def test_add_several_files_at_once(cli: Cli, tone: Path, tmp_path: Path) -> None:
    other = generate_tone(1.0, freq_hz=900, path=tmp_path / "tin-2.wav")
    rows = cli.json("add", str(tone), str(other))
    assert [r["source"] for r in rows] == ["chuong-bao.wav", "tin-2.wav"]
    assert [r["title"] for r in cli.json("list")] == ["chuong-bao", "tin-2"]


BAD = {
    "not audio": (lambda p: p.write_text("đây không phải âm thanh"), "not an audio file"),
    "empty": (lambda p: p.write_bytes(b""), "empty"),
    "truncated": (lambda p: p.write_bytes(generate_tone(3.0, path=p).read_bytes()[:50_000]), "truncated"),
    "silence": (lambda p: p.write_bytes(_silence(p)), "all silence"),
    "directory": (lambda p: p.mkdir(), "not a regular file"),
    "missing": (lambda p: None, "no such file"),
}


def _silence(path: Path) -> bytes:
    from speakerctl.audio.ffmpeg import file_url, run_ffmpeg

    scratch = path.with_suffix(".tmp.wav")
    run_ffmpeg(
        ["-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono", "-t", "2", "-y", file_url(scratch)], context="t"
    )
    return scratch.read_bytes()


@pytest.mark.parametrize("case", BAD)
def test_bad_input_is_one_line_exit_6_and_stores_nothing(cli: Cli, tmp_path: Path, case: str) -> None:
    make, reason = BAD[case]
    path = tmp_path / "tin-hong.wav"
    make(path)
    result = cli.run("add", str(path))
    assert result.exit_code == 6, (result.output, result.exception)
    assert "tin-hong.wav" in str(result.exception) and reason in str(result.exception)
    assert "\n" not in str(result.exception)
    assert cli.json("list") == [] and cli.content() == []
    assert not list((cli.data / "tmp").iterdir())


def test_too_long_for_the_configured_limit(tmp_path: Path, tone: Path) -> None:
    config = tmp_path / "speakerctl.toml"
    config.write_text("[speakerctl]\nmax_duration_s = 1.0\n", encoding="utf-8")
    result = CliRunner().invoke(
        app, ["--config", str(config), "--data-dir", str(tmp_path / "d"), "bulletin", "add", str(tone)]
    )
    assert isinstance(result.exception, SpeakerctlError) and exit_code(result.exception) == 6
    assert "limit is 1 s" in str(result.exception)


def test_tts_from_text_and_from_a_file(cli: Cli, tmp_path: Path) -> None:
    (spoken,) = cli.json(
        "tts", "Lúc 05:00 ngày 29/11/2026 xã họp.", "--voice", "vi-vn-x-south", "--rate", "170"
    )
    assert spoken["source"] == "tts" and spoken["title"] == "Lúc 05:00 ngày 29/11/2026 xã họp."
    assert abs(spoken["loudness_lufs"] + 16) <= 1
    text = tmp_path / "thong-bao.txt"
    text.write_text("Kính thưa bà con.\nXin mời bà con đi họp.", encoding="utf-8")
    (from_file,) = cli.json("tts", "--file", str(text), "--title", "Họp", "--chime")
    assert (from_file["source"], from_file["title"]) == ("thong-bao.txt", "Họp")
    assert "added bulletin" in cli.ok("tts", "Xin chào.", "--voice", "vi-vn-x-central")


def test_tts_usage_and_input_errors(cli: Cli, tmp_path: Path) -> None:
    assert cli.run("tts").exit_code == 2
    assert cli.run("tts", "a", "--file", "x.txt").exit_code == 2
    assert cli.run("tts", "xin chào", "--voice", "en").exit_code == 2
    assert cli.run("tts", "xin chào", "--rate", "20").exit_code == 6
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("Thông báo".encode("cp1258"))
    result = cli.run("tts", "--file", str(latin1))
    assert result.exit_code == 6 and "not UTF-8" in str(result.exception)
    assert cli.run("tts", "--file", str(tmp_path / "none.txt")).exit_code == 6


def test_compose_from_the_command_line(cli: Cli, tone: Path) -> None:
    (row,) = cli.json(
        "compose", "chime", "say:Kính thưa bà con.", str(tone), "silence:0.5", "chime", "--title", "Ghép"
    )
    assert (row["title"], row["source"], row["created"]) == ("Ghép", "tts", True)
    assert row["duration_s"] > 6


def test_compose_from_a_toml_file(cli: Cli, tone: Path, tmp_path: Path) -> None:
    (tmp_path / "loi-chao.txt").write_text("Xin chào bà con.", encoding="utf-8")
    spec = tmp_path / "ban-tin.toml"
    spec.write_text(
        'title = "Bản tin sáng"\nprofile = "music"\ngap_s = 0.3\nvoice = "vi-vn-x-south"\n'
        "[[item]]\nchime = true\n"
        '[[item]]\ntext = "loi-chao.txt"\n'
        f'[[item]]\nfile = "{tone.name}"\n'
        '[[item]]\nsay = "Hết bản tin."\nrate = 180\n',
        encoding="utf-8",
    )
    (row,) = cli.json("compose", "--from", str(spec))
    assert (row["title"], row["profile"], row["source"]) == ("Bản tin sáng", "music", "loi-chao.txt")
    (again,) = cli.json("compose", "--from", str(spec), "--title", "Khác", "--profile", "speech")
    assert (again["title"], again["profile"]) == ("Khác", "speech")


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[[item]]\nchime = true\nsay = 'x'\n", "item 1 needs exactly one of"),
        ("[[item]]\nsing = 'x'\n", "item 1"),
        ("title = 'x'\n", "there is no [[item]]"),
        ("[[item]]\nsilence = 'long'\n", "silence must be a number"),
        ("colour = 1\n[[item]]\nchime = true\n", "unknown key 'colour'"),
        ("[[item\n", "cannot read"),
    ],
)
def test_a_bad_composition_file_says_what_to_fix(cli: Cli, tmp_path: Path, toml: str, message: str) -> None:
    spec = tmp_path / "sai.toml"
    spec.write_text(toml, encoding="utf-8")
    result = cli.run("compose", "--from", str(spec))
    assert result.exit_code == 6, result.output
    assert message in str(result.exception) and "sai.toml" in str(result.exception)
    assert cli.content() == []


def test_a_missing_file_in_a_composition_is_named(cli: Cli, tmp_path: Path) -> None:
    spec = tmp_path / "ban-tin.toml"
    spec.write_text("[[item]]\nchime = true\n[[item]]\nfile = 'khong-co.wav'\n", encoding="utf-8")
    result = cli.run("compose", "--from", str(spec))
    assert result.exit_code == 6 and "'khong-co.wav': no such file" in str(result.exception)


def test_compose_needs_items_or_a_file(cli: Cli) -> None:
    assert cli.run("compose").exit_code == 2
    assert cli.run("compose", "silence:1").exit_code == 6


def test_list_as_a_table(cli: Cli, tone: Path) -> None:
    cli.ok("add", str(tone), "--title", "Thông báo")
    out = cli.ok("list")
    assert "Thông báo" in out and "LUFS" in out and "opus" in out


def test_show_tells_where_and_when_it_played(cli: Cli, tone: Path) -> None:
    (row,) = cli.json("add", str(tone))
    shown = cli.json("show", str(row["id"]))
    assert [v["codec"] for v in shown["variants"]] == ["opus", "mp3"] and shown["airings"] == []
    assert "never broadcast" in cli.ok("show", str(row["id"]))
    store = open_store(Settings(data_dir=cli.data))
    devices = store.devices.ids_in([ZONE])
    store.broadcasts.create(
        "bc-1", row["id"], Priority.EMERGENCY, [ZONE], devices, T0, T0, T0 + timedelta(hours=1)
    )
    (airing,) = cli.json("show", str(row["id"]))["airings"]
    assert airing["targets"] == [{"id": ZONE, "name": "Phường 1"}]
    assert (airing["clusters"], airing["played"], airing["state"], airing["priority"]) == (
        len(devices),
        0,
        "running",
        "emergency",
    )
    assert "Phường 1" in cli.ok("show", str(row["id"]))
    assert cli.run("show", "99").exit_code == 5


def test_export_to_a_file_or_a_directory(cli: Cli, tone: Path, tmp_path: Path) -> None:
    (row,) = cli.json("add", str(tone), "--title", "Bản tin")
    out = tmp_path / "out"
    out.mkdir()
    written = cli.json("export", str(row["id"]), str(out))
    assert Path(written["path"]).name == f"ban-tin-{row['id']}.ogg" and written["size"] == row["size"]
    assert cli.run("export", str(row["id"]), written["path"]).exit_code == 1
    assert "wrote" in cli.ok("export", str(row["id"]), written["path"], "--codec", "mp3", "--force")
    assert cli.run("export", "42", str(out)).exit_code == 5


def test_rm_is_refused_on_air_then_removes(cli: Cli, tone: Path) -> None:
    (row,) = cli.json("add", str(tone))
    store = open_store(Settings(data_dir=cli.data))
    store.broadcasts.create("bc-1", row["id"], Priority.NORMAL, [ZONE], [], T0, T0, T0 + timedelta(hours=1))
    refused = cli.run("rm", str(row["id"]))
    assert refused.exit_code == 1 and "on air" in str(refused.exception)
    assert len(cli.content()) == 2
    store.broadcasts.finish("bc-1", "complete", T0)  # type: ignore[arg-type]
    assert cli.json("rm", str(row["id"])) == {"id": row["id"], "title": "chuong-bao", "removed": True}
    assert cli.json("list") == [] and cli.content() == []
    assert cli.run("rm", str(row["id"])).exit_code == 5


def test_rm_is_refused_while_a_schedule_uses_it(
    cli: Cli, tone: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (row,) = cli.json("add", str(tone))
    monkeypatch.setattr(library, "schedules_using", lambda store, bid: ["sch-1"])
    result = cli.run("rm", str(row["id"]))
    assert result.exit_code == 1 and "schedule sch-1" in str(result.exception)


def test_the_cli_choices_match_the_audio_package() -> None:
    assert [p.value for p in bulletin_cli.ProfileName] == list(PROFILES)
    assert [v.value for v in bulletin_cli.VoiceName] == list(VOICES)


def test_a_long_import_shows_a_progress_bar_on_stderr(monkeypatch: pytest.MonkeyPatch) -> None:
    screen = io.StringIO()
    monkeypatch.setattr(bulletin_cli, "console_err", Console(file=screen, force_terminal=True, width=80))
    monkeypatch.setattr(bulletin_cli, "PROGRESS_AFTER_S", 0.0)
    with bulletin_cli._progress("importing tin.mp3") as progress:
        for fraction in (0.1, 0.5, 1.0):
            progress(fraction)
    assert "importing tin.mp3" in screen.getvalue()
    quiet = io.StringIO()
    monkeypatch.setattr(bulletin_cli, "console_err", Console(file=quiet, force_terminal=False))
    with bulletin_cli._progress("x") as progress:
        progress(0.5)
    assert quiet.getvalue() == ""
