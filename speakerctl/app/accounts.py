"""Accounts: users with a role and a zone, argon2 password hashes, sign-in sessions (CLI and web console).

A session is a random token the user holds; the store keeps only its sha256, so a copy of the database
signs nobody in. A session ends `session_hours` after sign-in, or after `session_idle_minutes` unused.
The CLI keeps its token in `<data dir>/session` (mode 0600). Without that file the CLI acts as the local
administrator: whoever can read the data directory holds the command-signing key already, so a password
would protect nothing there; accounts are for the people who reach speakerctl through a shell account
without the data directory, or through the web console.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from speakerctl.app import audit, views
from speakerctl.app.access import Action, Actor, Role, authorize, local_administrator
from speakerctl.app.context import AppContext
from speakerctl.app.policy import zone_tree
from speakerctl.config import Settings
from speakerctl.errors import NotFound, NotSignedIn, UsageError
from speakerctl.files import write_atomic
from speakerctl.i18n import _
from speakerctl.store import Store, UserInfo

HASHER = PasswordHasher()
"""argon2id with the library's current parameters; a hash made with older ones is replaced at sign-in."""
MIN_PASSWORD = 8
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_DUMMY_HASH = HASHER.hash("speakerctl: no such user")
"""Verified against for an unknown user, so a wrong name takes as long as a wrong password."""
SESSION_FILE = "session"


@dataclass(frozen=True, slots=True)
class SessionLimits:
    """How long a session lasts: absolutely, and unused."""

    absolute: timedelta = timedelta(hours=12)
    idle: timedelta = timedelta(hours=2)

    @classmethod
    def of(cls, settings: Settings) -> SessionLimits:
        """The limits the settings give."""
        return cls(timedelta(hours=settings.session_hours), timedelta(minutes=settings.session_idle_minutes))


def token_digest(token: str) -> str:
    """What the store keeps of a token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def actor_of(user: UserInfo) -> Actor:
    """The actor a stored user acts as."""
    return Actor(user.name, Role(user.role), user.zone_id)


def _refused() -> NotSignedIn:
    # One message for an unknown name and a wrong password: it must not tell which names exist.
    return NotSignedIn(_("wrong user name or password"), hint=_("check both, or ask an administrator"))


def _verify(user: UserInfo | None, password: str) -> bool:
    try:
        return HASHER.verify(user.password_hash if user else _DUMMY_HASH, password) and user is not None
    except (VerificationError, InvalidHashError):
        return False


def _find(store: Store, name: str) -> UserInfo | None:
    try:
        return store.users.get(name)
    except NotFound:
        return None


def sign_in(
    store: Store, name: str, password: str, now: datetime, *, limits: SessionLimits | None = None
) -> tuple[Actor, str]:
    """Check the password and open a session: (the actor, the token to hold). NotSignedIn if refused."""
    user = _find(store, name)
    if not _verify(user, password) or user is None or user.disabled:
        audit.record(store, name[:64], "sign_in", now, subject=f"user {name[:64]}", outcome="refused")
        raise _refused()
    if HASHER.check_needs_rehash(user.password_hash):
        store.users.set_password(user.name, HASHER.hash(password))
    store.sessions.prune(now)  # sessions past their absolute expiry are never used again
    token = secrets.token_urlsafe(32)
    store.sessions.add(token_digest(token), user.id, now, now + (limits or SessionLimits()).absolute)
    audit.record(store, user.name, "sign_in", now, subject=f"user {user.name}")
    return actor_of(user), token


def actor_for_session(
    store: Store, token: str, now: datetime, *, limits: SessionLimits | None = None
) -> Actor:
    """The user a session token signs in, marking it used; NotSignedIn if unknown, expired or disabled."""
    limits = limits or SessionLimits()
    digest = token_digest(token)
    session = store.sessions.get(digest)
    if session is None:
        raise NotSignedIn(_("not signed in (the session ended)"), hint=_("sign in again"))
    if now >= session.expires_at or now - session.last_used_at >= limits.idle:
        store.sessions.remove(digest)
        raise NotSignedIn(_("your session has expired"), hint=_("sign in again"))
    user = store.users.by_id(session.user_id)
    if user.disabled:
        raise NotSignedIn(_("user {name} is disabled").format(name=user.name), hint=_("ask an administrator"))
    store.sessions.touch(digest, now)
    return actor_of(user)


def sign_out(store: Store, token: str, now: datetime | None = None) -> None:
    """End a session (nothing happens for an unknown one); audited at `now`, else at its last use."""
    digest = token_digest(token)
    session = store.sessions.get(digest)
    if session is None or not store.sessions.remove(digest):
        return
    user = store.users.by_id(session.user_id)
    audit.record(store, user.name, "sign_out", now or session.last_used_at, subject=f"user {user.name}")


# -- user management ----------------------------------------------------------------------------------


def check_password(password: str) -> str:
    """The password if acceptable (UsageError otherwise)."""
    if len(password) < MIN_PASSWORD:
        raise UsageError(
            _("a password needs at least {n} characters").format(n=MIN_PASSWORD),
            hint=_("a short sentence is easy to remember"),
        )
    return password


def _check_name(name: str) -> str:
    if not _NAME.match(name):
        raise UsageError(
            _("bad user name {name!r}").format(name=name),
            hint=_("lower-case letters, digits, '.', '_' or '-', at most 64, e.g. lan.ke-sach"),
        )
    return name


def parse_role(value: str) -> Role:
    """A role from its name."""
    try:
        return Role(value.lower())
    except ValueError:
        roles = ", ".join(r.value for r in Role)
        raise UsageError(
            _("unknown role {role!r}").format(role=value), hint=_("use {roles}").format(roles=roles)
        ) from None


def authorize_manage(store: Store, actor: Actor, zone_id: str | None) -> None:
    """MANAGE_USERS on a user's zone; a user of every zone needs an actor of every zone."""
    tree = zone_tree(store)
    if zone_id is not None and tree.unknown([zone_id]):
        raise NotFound(_("no zone {zone!r}").format(zone=zone_id), hint=_("see `speakerctl zones list`"))
    authorize(actor, Action.MANAGE_USERS, [zone_id] if zone_id else list(tree.zones), tree)


@dataclass(frozen=True, slots=True)
class NewUser:
    """What `user add` was told."""

    name: str
    role: str
    zone_id: str | None
    password: str
    display_name: str = ""


def create_user(ctx: AppContext, new: NewUser, *, actor: Actor) -> views.UserView:
    """Add a user (the password hashed with argon2id); audited."""
    store = ctx.store()
    name, role = _check_name(new.name), parse_role(new.role)
    authorize_manage(store, actor, new.zone_id)
    password_hash = HASHER.hash(check_password(new.password))
    now = ctx.clock.now()
    user = store.users.add(name, role.value, new.zone_id, password_hash, now, new.display_name)
    detail = f"role {role.value}, zone {new.zone_id or '*'}"
    audit.record(store, actor, "user_add", now, subject=f"user {name}", detail=detail)
    return user_view(user)


def list_users(ctx: AppContext, *, actor: Actor) -> list[views.UserView]:
    """The users the actor may manage (every user for an installation-wide administrator)."""
    store = ctx.store()
    tree = zone_tree(store)
    authorize(actor, Action.MANAGE_USERS, [actor.zone_id] if actor.zone_id else [], tree)
    scope = tree.subtree([actor.zone_id]) if actor.zone_id else None
    found = store.users.all()
    return [user_view(u) for u in found if scope is None or (u.zone_id is not None and u.zone_id in scope)]


def _managed(ctx: AppContext, name: str, actor: Actor) -> tuple[Store, UserInfo]:
    store = ctx.store()
    user = store.users.get(name)
    authorize_manage(store, actor, user.zone_id)
    return store, user


def disable_user(ctx: AppContext, name: str, *, actor: Actor) -> views.UserView:
    """Disable a user and end their sessions; audited."""
    store, _user = _managed(ctx, name, actor)
    user = store.users.set_disabled(name, True)
    audit.record(store, actor, "user_disable", ctx.clock.now(), subject=f"user {name}")
    return user_view(user)


def change_password(ctx: AppContext, name: str, password: str, *, actor: Actor) -> None:
    """Set a user's password: their own, or (MANAGE_USERS) one of a user they manage; audited."""
    if actor.name != name:
        store, _user = _managed(ctx, name, actor)
    else:
        store = ctx.store()
    store.users.set_password(name, HASHER.hash(check_password(password)))
    audit.record(store, actor, "user_passwd", ctx.clock.now(), subject=f"user {name}")


def user_view(user: UserInfo) -> views.UserView:
    """A user as the CLI and the console show it (never the hash)."""
    return views.UserView(
        name=user.name,
        display_name=user.display_name,
        role=user.role,
        zone=user.zone_id,
        disabled=user.disabled,
        created_at=user.created_at,
    )


# -- the CLI's session file ----------------------------------------------------------------------------


def session_path(settings: Settings) -> Path:
    """Where the CLI keeps its signed-in session."""
    return settings.data_dir / SESSION_FILE


def login(ctx: AppContext, name: str, password: str) -> views.WhoamiView:
    """Sign the CLI in: the token goes to `<data dir>/session`, readable by its owner only.

    A session the file held before is ended once the new one is open.
    """
    store = ctx.store()
    previous = _read_session(ctx.settings, strict=False)
    actor, token = sign_in(store, name, password, ctx.clock.now(), limits=SessionLimits.of(ctx.settings))
    if previous is not None:
        sign_out(store, previous[1], ctx.clock.now())
    path = session_path(ctx.settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps({"user": actor.name, "token": token}))
    return whoami_view(actor, signed_in=True)


def _read_session(settings: Settings, *, strict: bool = True) -> tuple[str, str] | None:
    """(user, token) of the session file; None without one (or, not `strict`, with an unreadable one)."""
    try:
        data = json.loads(session_path(settings).read_text(encoding="utf-8"))
        return str(data["user"]), str(data["token"])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        if not strict:
            return None
        raise NotSignedIn(
            _("the session file {path} cannot be read: {error}").format(
                path=session_path(settings), error=exc
            ),
            hint=_("speakerctl logout, then speakerctl login NAME"),
        ) from exc


def logout(ctx: AppContext) -> bool:
    """End the CLI's session and remove its file (even an unreadable one); whether there was one."""
    found = _read_session(ctx.settings, strict=False)
    if found is not None:
        sign_out(ctx.store(sync_inventory=False), found[1], ctx.clock.now())
    existed = session_path(ctx.settings).exists()
    session_path(ctx.settings).unlink(missing_ok=True)
    return existed


def cli_actor(ctx: AppContext) -> Actor:
    """Who the CLI acts as: the signed-in user, else the local administrator of the data directory."""
    found = _read_session(ctx.settings)
    if found is None:
        return local_administrator()
    name, token = found
    try:
        return actor_for_session(
            ctx.store(sync_inventory=False), token, ctx.clock.now(), limits=SessionLimits.of(ctx.settings)
        )
    except NotSignedIn as exc:
        raise NotSignedIn(str(exc), hint=_("speakerctl login {name}").format(name=name)) from exc


def whoami(ctx: AppContext) -> views.WhoamiView:
    """The CLI's actor."""
    actor = cli_actor(ctx)
    return whoami_view(actor, signed_in=_read_session(ctx.settings) is not None)


def whoami_view(actor: Actor, *, signed_in: bool) -> views.WhoamiView:
    """An actor as `whoami` shows it."""
    return views.WhoamiView(user=actor.name, role=actor.role.value, zone=actor.zone_id, signed_in=signed_in)


def session_holds(store: Store, token: str, now: datetime, *, limits: SessionLimits | None = None) -> bool:
    """Whether a session is still signed in, without counting the question as use (an open page asks)."""
    limits = limits or SessionLimits()
    session = store.sessions.get(token_digest(token))
    return session is not None and now < session.expires_at and now - session.last_used_at < limits.idle
