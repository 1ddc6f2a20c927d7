"""`speakerctl user token create|list|revoke`: shown once, stored hashed, acting as their user."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fleet_small import COMMUNE, NOW, OTHER, inventory
from test_accounts_cli import Cli

from speakerctl.app import tokens
from speakerctl.app.access import Role
from speakerctl.cli import common
from speakerctl.clock import FixedClock
from speakerctl.errors import NotSignedIn
from speakerctl.store import Store


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cli]:
    """The CLI on the small fleet at NOW."""
    monkeypatch.setenv("SPEAKERCTL_INVENTORY", str(inventory(tmp_path / "fleet.json")))
    monkeypatch.setattr(common.state, "clock", FixedClock(NOW))
    yield Cli(tmp_path)


def _store(cli: Cli) -> Store:
    return Store.open(f"sqlite:///{cli.data / 'speakerctl.db'}")


def test_a_token_is_shown_once_stored_hashed_and_acts_as_its_user(cli: Cli) -> None:
    cli.add_user("lan", "operator")
    made = json.loads(cli.ok("user", "token", "create", "lan", "--label", "báo cáo", "--json"))
    secret = made["token"]
    assert secret.startswith("spk_") and len(secret) > 40 and made["prefix"] == secret[:12]
    listed = json.loads(cli.ok("user", "token", "list", "--json"))
    assert [(t["id"], t["user"], t["label"]) for t in listed] == [(made["id"], "lan", "báo cáo")]
    assert "token" not in listed[0] and secret not in cli.ok("user", "token", "list")
    with _store(cli) as store:
        stored = store.tokens.all()[0]
        assert stored.token_sha256 == hashlib.sha256(secret.encode()).hexdigest()
        actor = tokens.actor_for_token(store, secret, NOW)
        assert (actor.name, actor.role, actor.zone_id) == ("lan", Role.OPERATOR, COMMUNE)
        assert store.tokens.all()[0].last_used_at == NOW
    assert "revoked" in cli.ok("user", "token", "revoke", str(made["id"]))
    with _store(cli) as store, pytest.raises(NotSignedIn):
        tokens.actor_for_token(store, secret, NOW)


def test_a_disabled_user_s_tokens_stop_working(cli: Cli) -> None:
    cli.add_user("lan", "operator")
    secret = json.loads(cli.ok("user", "token", "create", "lan", "--json"))["token"]
    cli.ok("user", "disable", "lan")
    with _store(cli) as store, pytest.raises(NotSignedIn, match="disabled"):
        tokens.actor_for_token(store, secret, NOW)
    with _store(cli) as store, pytest.raises(NotSignedIn, match="unknown"):
        tokens.actor_for_token(store, "spk_" + "x" * 43, NOW)


def test_only_the_user_or_their_manager_handles_their_tokens(cli: Cli) -> None:
    cli.add_user("lan", "operator")
    cli.add_user("mai", "operator", zone=OTHER)
    made = json.loads(cli.ok("user", "token", "create", "mai", "--json"))
    cli.login("lan")
    assert json.loads(cli.ok("user", "token", "create", "lan", "--json"))["user"] == "lan"
    code, out = cli("user", "token", "create", "mai")
    assert code == 9, out
    code, out = cli("user", "token", "revoke", str(made["id"]))
    assert code == 9, out
    assert [t["user"] for t in json.loads(cli.ok("user", "token", "list", "--json"))] == ["lan"]
