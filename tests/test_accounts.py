"""Accounts on SQLite and PostgreSQL: users, argon2 hashes, sessions and expiry, scopes, the audit log."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from fleet_small import COMMUNE, NOW, OTHER, PROVINCE, context, user

from speakerctl.app import accounts
from speakerctl.app.access import Role, local_administrator
from speakerctl.app.accounts import NewUser, SessionLimits
from speakerctl.app.context import AppContext
from speakerctl.clock import FixedClock
from speakerctl.errors import NotAllowed, NotSignedIn, UsageError

PASSWORD = "mật khẩu đủ dài"
LIMITS = SessionLimits(absolute=timedelta(hours=12), idle=timedelta(hours=2))


@pytest.fixture
def ctx(tmp_path: Path, db_url: str) -> AppContext:
    """A context on the small fleet with one commune operator, `lan`."""
    ctx = context(tmp_path, db_url)
    accounts.create_user(
        ctx, NewUser("lan", "operator", COMMUNE, PASSWORD, "Nguyễn Thị Lan"), actor=local_administrator()
    )
    return ctx


def _clock(ctx: AppContext) -> FixedClock:
    assert isinstance(ctx.clock, FixedClock)
    return ctx.clock


def test_sign_in_gives_the_user_and_a_token_whose_digest_alone_is_stored(
    ctx: AppContext, db_url: str
) -> None:
    store = ctx.store()
    actor, token = accounts.sign_in(store, "lan", PASSWORD, NOW, limits=LIMITS)
    assert (actor.name, actor.role, actor.zone_id) == ("lan", Role.OPERATOR, COMMUNE)
    assert accounts.actor_for_session(store, token, NOW + timedelta(minutes=5), limits=LIMITS) == actor
    engine = sa.create_engine(db_url)
    with engine.connect() as conn:
        dumped = " ".join(
            str(row)
            for table in ("users", "user_sessions", "audit")
            for row in conn.execute(sa.text(f"SELECT * FROM {table}"))
        )
    engine.dispose()
    assert PASSWORD not in dumped and token not in dumped
    assert accounts.token_digest(token) in dumped and "$argon2id$" in dumped


def test_unknown_user_and_wrong_password_get_the_same_refusal_and_are_audited(ctx: AppContext) -> None:
    store = ctx.store()
    with pytest.raises(NotSignedIn) as unknown:
        accounts.sign_in(store, "nobody", PASSWORD, NOW)
    with pytest.raises(NotSignedIn) as wrong:
        accounts.sign_in(store, "lan", "not the password", NOW)
    assert str(unknown.value) == str(wrong.value)
    refused = [e for e in store.audit.entries() if e.action == "sign_in" and e.outcome == "refused"]
    assert {e.actor for e in refused} == {"nobody", "lan"}
    assert all("password" not in e.detail for e in refused)


def test_a_session_expires_when_idle_and_absolutely(ctx: AppContext) -> None:
    store = ctx.store()
    _, idle = accounts.sign_in(store, "lan", PASSWORD, NOW, limits=LIMITS)
    with pytest.raises(NotSignedIn, match="expired"):
        accounts.actor_for_session(store, idle, NOW + timedelta(hours=2), limits=LIMITS)
    with pytest.raises(NotSignedIn):  # and it is gone
        accounts.actor_for_session(store, idle, NOW, limits=LIMITS)
    _, busy = accounts.sign_in(store, "lan", PASSWORD, NOW, limits=LIMITS)
    for hour in range(1, 12):  # used every hour: alive until the absolute limit
        accounts.actor_for_session(store, busy, NOW + timedelta(hours=hour), limits=LIMITS)
    with pytest.raises(NotSignedIn, match="expired"):
        accounts.actor_for_session(store, busy, NOW + timedelta(hours=12), limits=LIMITS)


def test_sign_out_and_disable_end_sessions(ctx: AppContext) -> None:
    store = ctx.store()
    _, first = accounts.sign_in(store, "lan", PASSWORD, NOW)
    accounts.sign_out(store, first, NOW)
    with pytest.raises(NotSignedIn):
        accounts.actor_for_session(store, first, NOW)
    _, second = accounts.sign_in(store, "lan", PASSWORD, NOW)
    accounts.disable_user(ctx, "lan", actor=local_administrator())
    with pytest.raises(NotSignedIn):
        accounts.actor_for_session(store, second, NOW)
    with pytest.raises(NotSignedIn):
        accounts.sign_in(store, "lan", PASSWORD, NOW)
    actions = [e.action for e in store.audit.entries(actor="lan")]
    assert "sign_out" in actions and actions.count("sign_in") == 3


def test_an_outdated_hash_is_replaced_at_sign_in(ctx: AppContext) -> None:
    store = ctx.store()
    store.users.set_password("lan", PasswordHasher(time_cost=1, memory_cost=8192).hash(PASSWORD))
    old = store.users.get("lan").password_hash
    accounts.sign_in(store, "lan", PASSWORD, NOW)
    new = store.users.get("lan").password_hash
    assert new != old and not accounts.HASHER.check_needs_rehash(new)


def test_user_management_is_scoped(ctx: AppContext) -> None:
    commune_admin = user(Role.ADMINISTRATOR, COMMUNE)
    accounts.create_user(ctx, NewUser("hoa", "viewer", COMMUNE, PASSWORD), actor=commune_admin)
    with pytest.raises(NotAllowed):
        accounts.create_user(ctx, NewUser("minh", "operator", OTHER, PASSWORD), actor=commune_admin)
    with pytest.raises(NotAllowed):
        accounts.create_user(ctx, NewUser("tinh", "operator", None, PASSWORD), actor=commune_admin)
    with pytest.raises(NotAllowed):
        accounts.create_user(
            ctx, NewUser("x", "viewer", COMMUNE, PASSWORD), actor=user(Role.OPERATOR, PROVINCE)
        )
    assert {u.name for u in accounts.list_users(ctx, actor=commune_admin)} == {"lan", "hoa"}
    with pytest.raises(UsageError):
        accounts.create_user(ctx, NewUser("hoa", "viewer", COMMUNE, PASSWORD), actor=commune_admin)
    with pytest.raises(UsageError):
        accounts.create_user(ctx, NewUser("short", "viewer", COMMUNE, "1234567"), actor=commune_admin)
    entry = ctx.store().audit.entries(actor=commune_admin.name)[0]
    assert (entry.action, entry.subject) == ("user_add", "user hoa")
