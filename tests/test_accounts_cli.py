"""`speakerctl user`, `login`, `logout`, `whoami` through CliRunner; refusals exit 8 and 9."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fleet_small import COMMUNE, NOW, OTHER, PROVINCE, inventory
from typer.testing import CliRunner

from speakerctl.cli import common
from speakerctl.cli.main import app, exit_code
from speakerctl.clock import FixedClock
from speakerctl.errors import SpeakerctlError
from speakerctl.store import AuditEntry, Store

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

    def add_user(self, name: str, role: str, zone: str = COMMUNE) -> str:
        """Add a user with PASSWORD."""
        return self.ok(
            "user", "add", name, "--role", role, "--zone", zone, "--password-stdin", stdin=PASSWORD + "\n"
        )

    def login(self, name: str) -> str:
        """Sign in as `name` with PASSWORD."""
        return self.ok("login", name, "--password-stdin", stdin=PASSWORD + "\n")

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
    cli.add_user("lan", "operator")
    assert json.loads(cli.ok("whoami", "--json"))["signed_in"] is False
    assert "signed in as lan" in cli.login("lan")
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
    cli.add_user("lan", "operator")
    cli.login("lan")
    assert isinstance(common.state.clock, FixedClock)
    common.state.clock.advance(timedelta(hours=3))
    code, out = cli("whoami")
    assert code == 8 and "expired" in out and "speakerctl login lan" in out


def test_a_commune_operator_may_not_manage_users(cli: Cli) -> None:
    cli.add_user("lan", "operator")
    cli.add_user("an", "administrator")
    cli.login("lan")
    code, _ = cli(
        "user", "add", "x", "--role", "viewer", "--zone", COMMUNE, "--password-stdin", stdin=PASSWORD + "\n"
    )
    assert code == 9
    cli.login("an")
    code, out = cli(
        "user", "add", "y", "--role", "viewer", "--zone", OTHER, "--password-stdin", stdin=PASSWORD + "\n"
    )
    assert code == 9 and OTHER in out
    cli.ok("user", "disable", "lan")
    users = {u["name"]: u for u in json.loads(cli.ok("user", "list", "--json"))}
    assert users["lan"]["disabled"] is True and "password_hash" not in users["lan"]


def _bulletin(cli: Cli) -> None:
    cli.ok("zones", "list")  # creates the store and loads the fleet
    with Store.open(f"sqlite:///{cli.data / 'speakerctl.db'}") as store:
        store.bulletins.add("Tin", "ab" * 32, "opus", "ogg", 24, 61_000, 183_000, "t.mp3", "x", NOW)


def _as(cli: Cli, name: str, role: str, zone: str) -> None:
    cli.ok("logout")
    cli.ok("user", "add", name, "--role", role, "--zone", zone, "--password-stdin", stdin=PASSWORD + "\n")
    cli.ok("login", name, "--password-stdin", stdin=PASSWORD + "\n")


def test_refusals_and_the_approval_queue_from_the_cli(cli: Cli) -> None:
    _bulletin(cli)
    _as(cli, "xem", "viewer", COMMUNE)
    assert cli("broadcast", "1", "--to", COMMUNE)[0] == 9
    _as(cli, "lan", "operator", COMMUNE)
    assert cli("broadcast", "1", "--to", OTHER)[0] == 9
    assert cli("broadcast", "1", "--to", PROVINCE)[0] == 9
    code, out = cli("broadcast", "1", "--to", COMMUNE)
    assert code == 11 and "submitted for approval as item 1" in out
    [item] = json.loads(cli.ok("bulletin", "submit", "1", "--to", COMMUNE, "--json"))
    _as(cli, "hung", "approver", COMMUNE)
    queue = json.loads(cli.ok("bulletin", "queue", "--json"))
    assert [(i["id"], i["submitted_by"]) for i in queue] == [(1, "lan"), (item["id"], "lan")]
    done = json.loads(cli.ok("bulletin", "approve", "1", "--at", "2026-11-30 17:00", "--json"))
    assert done["item"]["decided_by"] == "hung" and done["schedule"]
    assert "rejected" in cli.ok("bulletin", "reject", str(item["id"]), "--reason", "Trùng giờ họp")
    assert cli.ok("bulletin", "queue", "--json").strip() == "[]"
    assert cli("zones", "policy", COMMUNE, "--approval-for", "none")[0] == 9
    cli.ok("logout")
    assert "nobody" in cli.ok("zones", "policy", COMMUNE, "--approval-for", "none")
    actions = {(e.actor, e.action) for e in _audit(cli)}
    assert {
        ("lan", "submit"),
        ("hung", "approve"),
        ("hung", "reject"),
        ("local-admin", "approval_policy"),
    } <= actions


def _audit(cli: Cli) -> list[AuditEntry]:
    with Store.open(f"sqlite:///{cli.data / 'speakerctl.db'}") as store:
        return store.audit.entries(limit=100)


def test_a_damaged_session_file_is_refused_then_logout_clears_it(cli: Cli) -> None:
    cli.add_user("lan", "operator")
    cli.login("lan")
    cli.login("lan")  # ends the first session
    outcomes = [(e.action, e.outcome) for e in _audit(cli) if e.actor == "lan"]
    assert outcomes.count(("sign_in", "ok")) == 2 and outcomes.count(("sign_out", "ok")) == 1
    (cli.data / "session").write_text("not json", encoding="utf-8")
    code, out = cli("whoami")
    assert code == 8 and "speakerctl logout" in out
    assert "signed out" in cli.ok("logout")
    assert json.loads(cli.ok("whoami", "--json"))["signed_in"] is False


def test_remote_actions_and_provisioning_are_scoped(cli: Cli) -> None:
    _as(cli, "xem", "viewer", COMMUNE)
    assert cli("devices", "set-volume", f"{COMMUNE}-01", "40")[0] == 9
    _as(cli, "lan", "operator", COMMUNE)
    assert cli("devices", "set-volume", f"{OTHER}-01", "40")[0] == 9  # refused before any broker is tried
    assert cli("devices", "reboot", f"{COMMUNE}-01")[0] == 9  # operators may not reboot
    assert cli("devices", "provision", f"{COMMUNE}-01")[0] == 9
    assert cli("keys", "rotate")[0] == 9
    _as(cli, "an", "administrator", COMMUNE)
    assert cli("devices", "provision", f"{OTHER}-01")[0] == 9
    assert cli("devices", "provision", "--controller")[0] == 9  # the controller's account: every zone
    assert f"{COMMUNE}-01" in cli.ok("devices", "provision", f"{COMMUNE}-01")
    assert ("an", "provision") in {(e.actor, e.action) for e in _audit(cli)}


def test_a_request_held_for_approval_shows_no_progress_bar(cli: Cli) -> None:
    _bulletin(cli)
    _as(cli, "lan", "operator", COMMUNE)
    result = cli.runner.invoke(
        app, [*cli.opts, "broadcast", "1", "--to", COMMUNE], env={"SPEAKERCTL_LANG": "vi"}
    )
    assert exit_code(result.exception) == 11  # type: ignore[arg-type]
    assert "0/?" not in result.output and "lượt phát" not in result.output, result.output
    _as(cli, "hung", "approver", COMMUNE)
    placed = cli.ok("bulletin", "approve", "1", "--at", "2026-11-30 17:00")  # a schedule: nothing airs now
    assert "0/?" not in placed and "approved: schedule" in placed, placed
    cli.ok("logout")
