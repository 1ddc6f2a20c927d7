"""Who is at the console: sign-in sessions in an HttpOnly, SameSite=Strict cookie, CSRF tokens, language.

The session itself (expiry, idle time, sign-out) belongs to `app.accounts`; the cookie only carries its
token. Every POST must present the CSRF token of its browser and session (a form field `csrf` or the
`X-CSRF-Token` header that htmx sends), derived with HMAC from a key of this server: a mismatch is 403.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from aiohttp import web

from speakerctl.app import accounts
from speakerctl.app.access import Actor
from speakerctl.clock import Clock
from speakerctl.errors import NotSignedIn
from speakerctl.store import Store
from speakerctl.web.render import DEFAULT_LANGUAGE, LANGUAGES

SESSION_COOKIE = "speakerctl_session"
BROWSER_COOKIE = "speakerctl_browser"
LANGUAGE_COOKIE = "speakerctl_lang"
CSRF_HEADER = "X-CSRF-Token"

YEAR_S = 365 * 24 * 3600
PUBLIC_PREFIXES = ("/login", "/language/", "/static/", "/api/", "/metrics")
"""Paths served without a session: sign-in, the language switch, static files, the JSON API, metrics."""


@dataclass(frozen=True, slots=True)
class Visit:
    """What the console knows of a request: the user (None before sign-in), CSRF token, language."""

    actor: Actor | None
    token: str
    csrf: str
    lang: str


class Guard:
    """Resolves sessions against the store and checks CSRF tokens with this server's key."""

    def __init__(self, store: Store, clock: Clock, limits: accounts.SessionLimits) -> None:
        self.store, self.clock, self.limits = store, clock, limits
        self._key = secrets.token_bytes(32)

    def csrf(self, browser: str, token: str) -> str:
        """The CSRF token for a browser and its session."""
        return hmac.new(self._key, f"{browser}|{token}".encode(), hashlib.sha256).hexdigest()[:32]

    async def visit(self, request: web.Request) -> Visit:
        """The request's user, CSRF token and language."""
        token = request.cookies.get(SESSION_COOKIE, "")
        actor = await self._actor(token) if token else None
        browser = request.cookies.get(BROWSER_COOKIE, "")
        if not browser:  # a first visit: the id set with this response signs the form it carries
            browser = request[NEW_BROWSER] = secrets.token_urlsafe(16)
        csrf = self.csrf(browser, token if actor else "")
        return Visit(actor, token if actor else "", csrf, language(request))

    async def _actor(self, token: str) -> Actor | None:
        try:
            now = self.clock.now()
            return await asyncio.to_thread(
                accounts.actor_for_session, self.store, token, now, limits=self.limits
            )
        except NotSignedIn:
            return None

    async def holds(self, token: str) -> bool:
        """Whether a session is still signed in (an open event stream asks now and then)."""
        now = self.clock.now()
        return await asyncio.to_thread(accounts.session_holds, self.store, token, now, limits=self.limits)

    async def check_csrf(self, request: web.Request, visit: Visit) -> None:
        """Refuse (403) a POST whose CSRF token is missing or not this browser's and session's."""
        sent = request.headers.get(CSRF_HEADER, "")
        if not sent:
            sent = str((await request.post()).get("csrf", ""))
        if not hmac.compare_digest(sent, visit.csrf):
            raise web.HTTPForbidden(text="CSRF token missing or stale: reload the page\n")

    async def sign_in(self, name: str, password: str) -> tuple[Actor, str]:
        """Check the password and open a session (NotSignedIn if refused)."""
        now = self.clock.now()
        return await asyncio.to_thread(accounts.sign_in, self.store, name, password, now, limits=self.limits)

    async def sign_out(self, token: str) -> None:
        """End the session."""
        await asyncio.to_thread(accounts.sign_out, self.store, token, self.clock.now())


VISIT = web.RequestKey("visit", Visit)
NEW_BROWSER = web.RequestKey("new_browser", str)
SCOPE_NAME = web.RequestKey("scope_name", str)


def language(request: web.Request) -> str:
    """The language the browser picked, Vietnamese unless English was chosen."""
    lang = request.cookies.get(LANGUAGE_COOKIE, DEFAULT_LANGUAGE)
    return lang if lang in LANGUAGES else DEFAULT_LANGUAGE


def set_cookie(response: web.StreamResponse, name: str, value: str, max_age: int | None = None) -> None:
    """A cookie scripts cannot read and other sites never send."""
    response.set_cookie(name, value, max_age=max_age, httponly=True, samesite="Strict", path="/")


def ensure_browser(request: web.Request, response: web.StreamResponse) -> None:
    """Give a new browser the random id its CSRF tokens were derived from."""
    if NEW_BROWSER in request and not response.prepared:
        set_cookie(response, BROWSER_COOKIE, request[NEW_BROWSER], YEAR_S)


def public(path: str) -> bool:
    """Whether a path is served without signing in."""
    return path == "/language" or path.startswith(PUBLIC_PREFIXES)


def safe_next(path: str) -> str:
    """A local path to go back to (never another site)."""
    return path if path.startswith("/") and not path.startswith("//") and "\\" not in path else "/"


def signed_in(request: web.Request) -> Actor:
    """The signed-in user of a console request (the middleware sent anyone else to sign in)."""
    actor = request[VISIT].actor
    assert actor is not None
    return actor
