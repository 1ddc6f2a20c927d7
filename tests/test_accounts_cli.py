"""`speakerctl user`, `login`, `logout`, `whoami` through CliRunner; refusals exit 8 and 9."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from speakerctl.cli import common
from speakerctl.cli.main import app, exit_code
from speakerctl.clock import FixedClock
from speakerctl.errors import SpeakerctlError
from tests.fleet_small import COMMUNE, NOW, OTHER, inventory

PASSWORD = "mật khẩu đủ dài"


class Cli:
    """A CliRunner on one data directory, mapping project errors to exit codes as `main()` does."""

    def __init__(self, tmp_path: Path) -> None:
        self.runner = CliRunner()
        self.data = tmp_path / "data"
        self.opts = ["--data-dir", str(self.data)]

    def __call__(self, *args: str, stdin: str | None = None) -> tuple[int, str]:
        result = self.runner.invoke(app, [*self.opts, *args], input=stdin)
        if isinstance(result.exception, SpeakerctlError):
            return exit_code(result.exception), str(result.exception) + " " + result.exception.hint
        assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
        return result.exit_code, result.output

    def ok(self, *args: str, stdin: str | None = None) -> str:
        code, out = self(*args, stdin=stdin)
        assert code == 0, out
        return out


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cli]:
    """The CLI on the small fleet at NOW, on a clock the test moves."""
    monkeypatch.setenv("SPEAKERCTL_INVENTORY", str(inventory(tmp_path / "fleet.json")))
    monkeypatch.setattr(common.state, "clock", FixedClock(NOW))
    yield Cli(tmp_path)


def test_login_whoami_logout(cli: Cli) -> None:
    cli.ok(
        "user",
        "add",
        "lan",
        "--role",
        "operator",
        "--zone",
        COMMUNE,
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    assert json.loads(cli.ok("whoami", "--json"))["signed_in"] is False
    assert "signed in as lan" in cli.ok("login", "lan", "--password-stdin", stdin=PASSWORD + "\n")
    session = cli.data / "session"
    assert stat.S_IMODE(session.stat().st_mode) == 0o600
    assert json.loads(cli.ok("whoami", "--json")) == {
        "user": "lan",
        "role": "operator",
        "zone": COMMUNE,
        "signed_in": True,
    }
    assert "signed out" in cli.ok("logout")
    assert not session.exists()
    assert json.loads(cli.ok("whoami", "--json"))["user"] == "local-admin"


def test_typed_passwords_must_match(cli: Cli) -> None:
    code, _ = cli("user", "add", "lan", "--role", "viewer", stdin=f"{PASSWORD}\n{PASSWORD}\n")
    assert code == 0
    assert "lan" in cli.ok("user", "list")
    code, out = cli("login", "lan", stdin="wrong password\n")
    assert code == 8 and "wrong user name or password" in out


def test_an_expired_session_says_how_to_sign_in_again(cli: Cli) -> None:
    cli.ok(
        "user",
        "add",
        "lan",
        "--role",
        "operator",
        "--zone",
        COMMUNE,
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    cli.ok("login", "lan", "--password-stdin", stdin=PASSWORD + "\n")
    assert isinstance(common.state.clock, FixedClock)
    common.state.clock.advance(timedelta(hours=3))
    code, out = cli("whoami")
    assert code == 8 and "expired" in out and "speakerctl login lan" in out


def test_a_commune_operator_may_not_manage_users(cli: Cli) -> None:
    cli.ok(
        "user",
        "add",
        "lan",
        "--role",
        "operator",
        "--zone",
        COMMUNE,
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    cli.ok(
        "user",
        "add",
        "an",
        "--role",
        "administrator",
        "--zone",
        COMMUNE,
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    cli.ok("login", "lan", "--password-stdin", stdin=PASSWORD + "\n")
    code, _ = cli(
        "user", "add", "x", "--role", "viewer", "--zone", COMMUNE, "--password-stdin", stdin=PASSWORD + "\n"
    )
    assert code == 9
    cli.ok("login", "an", "--password-stdin", stdin=PASSWORD + "\n")
    code, out = cli(
        "user", "add", "y", "--role", "viewer", "--zone", OTHER, "--password-stdin", stdin=PASSWORD + "\n"
    )
    assert code == 9 and OTHER in out
    cli.ok("user", "disable", "lan")
    users = {u["name"]: u for u in json.loads(cli.ok("user", "list", "--json"))}
    assert users["lan"]["disabled"] is True and "password_hash" not in users["lan"]
