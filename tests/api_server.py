"""A real `speakerctl serve --http` on a free port with a throw-away store, a user and an API token."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from speakerctl.app import accounts, tokens
from speakerctl.app.access import local_administrator
from speakerctl.app.context import AppContext, open_store
from speakerctl.broker.embedded import EmbeddedBroker
from speakerctl.broker.ports import free_port
from speakerctl.clock import SystemClock
from speakerctl.config import Settings
from speakerctl.store import BroadcastState

PASSWORD = "một mật khẩu dài"
COMMUNE = "st-ke-sach-an-my"


@dataclass(frozen=True)
class Served:
    """Where the API is, and a token of an administrator of every zone and of a commune operator."""

    url: str
    admin_token: str
    operator_token: str
    data_dir: Path


def seed(settings: Settings) -> tuple[str, str]:
    """A bulletin, a finished broadcast, two users with a token each: (admin token, operator token)."""
    ctx = AppContext(settings, SystemClock())
    now = datetime.now(UTC)
    with open_store(settings) as store:
        bulletin = store.bulletins.add(
            "Bản tin sáng", "ef" * 32, "opus", "ogg", 24, 60_000, 180_000, "ban-tin.mp3", "admin", now
        )
        device = next(d.id for d in store.devices.all() if d.zone_id == COMMUNE)
        start = now - timedelta(minutes=3)
        store.broadcasts.create("bc-seeded", bulletin.id, 1, [COMMUNE], [device], start, start, now)
        store.broadcasts.finish("bc-seeded", BroadcastState.INCOMPLETE, now)
    admin = local_administrator()
    accounts.create_user(ctx, accounts.NewUser("quan-tri", "administrator", None, PASSWORD), actor=admin)
    accounts.create_user(ctx, accounts.NewUser("lan", "operator", COMMUNE, PASSWORD), actor=admin)
    made = [tokens.create(ctx, name, "tests", actor=admin).token for name in ("quan-tri", "lan")]
    return made[0], made[1]


@contextmanager
def served(tmp_path: Path) -> Iterator[Served]:
    """`speakerctl serve --http` in its own process, on an embedded broker; stopped with SIGTERM."""
    data_dir, port = tmp_path / "data", free_port()
    admin, operator = seed(Settings(data_dir=data_dir))
    with EmbeddedBroker() as broker:
        cmd = [sys.executable, "-m", "speakerctl", "--data-dir", str(data_dir), "--broker", broker.url,
               "serve", "--http", f"127.0.0.1:{port}"]  # fmt: skip
        with subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True) as proc:
            url = f"http://127.0.0.1:{port}/"
            try:
                _wait_for(url + "api/v1/openapi.json", proc)
                yield Served(url, admin, operator, data_dir)
            finally:
                proc.send_signal(signal.SIGTERM)
                _, err = proc.communicate(timeout=60)
    assert "Traceback" not in err, err


def _wait_for(url: str, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"speakerctl serve exited early: {proc.communicate()[1][-6000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
