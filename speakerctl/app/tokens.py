"""API tokens: long-lived bearer tokens for the HTTP API, each acting as the user it belongs to.

A token is random (`spk_` and 43 URL-safe characters); the store keeps its sha256 and its first
characters only, so it is shown once, when created. A token acts exactly as its user: the same role,
the same zone, the same `authorize()` rule as the console; disabling the user stops their tokens.
Creating, listing and revoking tokens of another user needs MANAGE_USERS on that user's zone.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from speakerctl.app import audit, views
from speakerctl.app.access import Action, Actor
from speakerctl.app.accounts import actor_of, authorize_manage, list_users, token_digest
from speakerctl.app.context import AppContext
from speakerctl.errors import NotSignedIn, UsageError
from speakerctl.i18n import _
from speakerctl.store import Store, TokenInfo, UserInfo

PREFIX = "spk_"
SHOWN = 12
"""Characters of a token kept to tell it apart (`spk_` and 8 more)."""
TOUCH_EVERY = timedelta(minutes=1)
"""`last_used_at` is written at most this often per token: a busy script must not hold the write lock."""
LABEL_MAX = 64


def _owner(store: Store, actor: Actor, name: str) -> UserInfo:
    """The user `name`, if the actor may manage their tokens (their own, or MANAGE_USERS over them)."""
    user = store.users.get(name)
    if actor.name != user.name:
        authorize_manage(store, actor, user.zone_id)
    return user


def view(token: TokenInfo, user: str) -> views.TokenView:
    """A stored token as people see it."""
    return views.TokenView(
        id=token.id,
        user=user,
        label=token.label,
        prefix=token.prefix,
        created_at=token.created_at,
        last_used_at=token.last_used_at,
    )


def create(ctx: AppContext, name: str, label: str = "", *, actor: Actor) -> views.NewTokenView:
    """A new token for user `name`, shown in the answer once; audited."""
    if len(label) > LABEL_MAX:
        raise UsageError(_("a token label has at most {n} characters").format(n=LABEL_MAX))
    store, now = ctx.store(sync_inventory=False), ctx.clock.now()
    user = _owner(store, actor, name)
    secret = PREFIX + secrets.token_urlsafe(32)
    stored = store.tokens.add(user.id, label, secret[:SHOWN], token_digest(secret), now)
    audit.record(store, actor, "token_create", now, subject=f"user {name}", detail=f"token {stored.id}")
    return views.NewTokenView.model_validate(view(stored, user.name).model_dump() | {"token": secret})


def list_tokens(ctx: AppContext, name: str | None = None, *, actor: Actor) -> list[views.TokenView]:
    """The tokens of user `name`; without a name, those of every user the actor manages, else their own."""
    store = ctx.store(sync_inventory=False)
    if name is None and actor.may(Action.MANAGE_USERS):
        names = {u.name for u in list_users(ctx, actor=actor)}
        users = {u.id: u.name for u in store.users.all() if u.name in names}
        return [view(t, users[t.user_id]) for t in store.tokens.all() if t.user_id in users]
    user = _owner(store, actor, name or actor.name)
    return [view(t, user.name) for t in store.tokens.all(user.id)]


def revoke(ctx: AppContext, token_id: int, *, actor: Actor) -> views.TokenView:
    """Revoke a token at once; audited."""
    store, now = ctx.store(sync_inventory=False), ctx.clock.now()
    token = store.tokens.get(token_id)
    user = _owner(store, actor, store.users.by_id(token.user_id).name)
    store.tokens.remove(token_id)
    audit.record(store, actor, "token_revoke", now, subject=f"user {user.name}", detail=f"token {token_id}")
    return view(token, user.name)


def actor_for_token(store: Store, token: str, now: datetime) -> Actor:
    """The user a bearer token acts as; NotSignedIn if the token is unknown, revoked or its user disabled."""
    found = store.tokens.by_digest(token_digest(token)) if token.startswith(PREFIX) else None
    if found is None:
        raise NotSignedIn(_("unknown or revoked API token"), hint=_("speakerctl user token create NAME"))
    user = store.users.by_id(found.user_id)
    if user.disabled:
        raise NotSignedIn(_("user {name} is disabled").format(name=user.name), hint=_("ask an administrator"))
    if found.last_used_at is None or now - found.last_used_at >= TOUCH_EVERY:
        store.tokens.touch(found.id, now)
    return actor_of(user)
