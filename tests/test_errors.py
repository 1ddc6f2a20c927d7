"""Failures the operator meets: one line saying what failed, a hint, an exit code; no SQL, no traceback."""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from typer.testing import CliRunner

from speakerctl import files
from speakerctl.audio import ffmpeg, generate_tone
from speakerctl.broker.ports import free_port
from speakerctl.cli.main import app, exit_code
from speakerctl.errors import NoSpace, StoreError
from speakerctl.store import Store
from speakerctl.store import engine as store_engine
from speakerctl.store.failures import translate

PG_ADMIN_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"

postgres_only = pytest.mark.parametrize("db_url", ["postgres"], indirect=True)


def _speakerctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "speakerctl", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},  # rich wraps at 80 columns otherwise
    )


def _one_line_with_hint(stderr: str) -> tuple[str, str]:
    """The error and hint lines of a failed command, checked to be nothing more."""
    lines = stderr.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("error: ") and lines[1].startswith("hint: "), stderr
    assert "[SQL" not in stderr and "sqlalche.me" not in stderr and "Traceback" not in stderr
    return lines[0], lines[1]


def test_an_unreachable_database_server_is_named_with_a_hint(tmp_path: Path) -> None:
    port = free_port()
    url = f"postgresql+psycopg2://postgres@127.0.0.1:{port}/speakerctl"
    done = _speakerctl("--data-dir", str(tmp_path), "--database", url, "devices", "list")
    error, hint = _one_line_with_hint(done.stderr)
    assert done.returncode == 1
    assert f"cannot reach the database server at 127.0.0.1:{port}" in error
    assert f"is PostgreSQL running at 127.0.0.1:{port}?" in hint


@pytest.mark.postgres
def test_a_missing_postgres_database_says_how_to_create_it(tmp_path: Path) -> None:
    url = "postgresql+psycopg2://postgres@127.0.0.1:5432/speakerctl_never_created"
    done = _speakerctl("--data-dir", str(tmp_path), "--database", url, "devices", "list")
    error, hint = _one_line_with_hint(done.stderr)
    assert done.returncode == 1
    assert "database 'speakerctl_never_created' does not exist" in error
    assert "createdb -h 127.0.0.1 -p 5432 -U postgres speakerctl_never_created" in hint


@pytest.mark.postgres
@postgres_only
def test_a_database_dropped_under_a_running_store_is_one_line(db_url: str) -> None:
    with Store.open(db_url) as store:
        assert store.devices.all() == []
        name = sa.make_url(db_url).database
        admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')
        admin.dispose()
        with pytest.raises(StoreError) as raised:
            store.devices.all()
    message = str(raised.value)
    assert "\n" not in message and "SELECT" not in message and "[SQL" not in message
    assert "does not exist" in message or "lost the connection" in message
    assert raised.value.hint


def test_a_locked_sqlite_database_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "speakerctl.db"
    Store.open(f"sqlite:///{path}").close()
    monkeypatch.setattr(store_engine, "BUSY_TIMEOUT_S", 0.05)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with Store.open(f"sqlite:///{path}") as store, pytest.raises(StoreError) as raised:
            store.devices.sync([])  # a writer: in WAL mode readers never wait
    finally:
        holder.close()
    assert str(raised.value) == "the database is locked"
    assert raised.value.hint == "is another process writing to it? try again"


def test_an_unclassified_failure_quotes_neither_sql_nor_parameters() -> None:
    driver = sqlite3.IntegrityError("UNIQUE constraint failed: devices.id")
    exc = IntegrityError("INSERT INTO devices (id) VALUES (?)", ("secret-id",), driver)
    error = translate(exc, sa.make_url("sqlite:////var/lib/speakerctl/speakerctl.db"))
    assert str(error) == "database error: UNIQUE constraint failed: devices.id"
    assert "INSERT" not in str(error) and "secret-id" not in str(error)
    assert error.hint == "check /var/lib/speakerctl/speakerctl.db; run with -v for details"


def test_a_file_name_that_is_not_utf8_is_imported_under_a_shown_name(tmp_path: Path) -> None:
    tone = generate_tone(1.0, path=tmp_path / "tone.wav")
    odd = Path(os.fsdecode(os.fsencode(tmp_path) + b"/th\xf4ng-b\xe1o.wav"))
    tone.rename(odd)
    result = CliRunner().invoke(
        app, ["--data-dir", str(tmp_path / "data"), "bulletin", "add", str(odd), "--json"]
    )
    assert result.exit_code == 0, (result.output, result.exception)
    listed = json.loads(
        CliRunner().invoke(app, ["--data-dir", str(tmp_path / "data"), "bulletin", "list", "--json"]).output
    )
    assert listed[0]["title"] == "th\ufffdng-b\ufffdo" and listed[0]["source"] == "th\ufffdng-b\ufffdo.wav"


_FULL_DISK_LOG = (
    b"[out#0/f32le @ 0x5617ac331040] Error writing trailer: No space left on device\n"
    b"[out#0/f32le @ 0x5617ac331040] video:0KiB audio:1536KiB subtitle:0KiB other streams:0KiB\n"
    b"Conversion failed!\n"
)


def test_a_full_disk_under_ffmpeg_says_no_space_and_where(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_run = ffmpeg._run

    def full_disk(
        command: list[str], timeout_s: float, progress: ffmpeg.ProgressFn | None
    ) -> tuple[int, bytes, bytes]:
        if command[-1].startswith("file:") and command[-2] != "-i":  # writes a file: the disk is full
            return 1, b"", _FULL_DISK_LOG
        return real_run(command, timeout_s, progress)

    tone = generate_tone(1.0, path=tmp_path / "tin.wav")
    monkeypatch.setattr(ffmpeg, "_run", full_disk)
    result = CliRunner().invoke(app, ["--data-dir", str(tmp_path / "data"), "bulletin", "add", str(tone)])
    assert isinstance(result.exception, NoSpace), result.output
    assert str(result.exception) == f"no space left on device for {tmp_path / 'data' / 'tmp'}"
    assert result.exception.hint == f"free space in {tmp_path / 'data' / 'tmp'}"
    assert exit_code(result.exception) == 1


def test_a_full_disk_under_write_atomic_says_no_space_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(fd: int, data: bytes, mode: int) -> None:
        os.close(fd)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(files, "_write_synced", full)
    with pytest.raises(NoSpace) as raised:
        files.write_atomic(tmp_path / "active", "k1\n")
    assert raised.value.hint == f"free space in {tmp_path}"
    assert list(tmp_path.iterdir()) == []
