"""What the console does: sign in and out, switch language, broadcast, stop, acknowledge, remote actions.

Every action is an app service called with the signed-in Actor; the service decides (authorize inside).
Answers are small fragments for htmx (the page's live parts show the effect); refusals are 403 fragments.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any

from aiohttp import web

from speakerctl.app import alerts, approvals, broadcasts, cap, remote, stops
from speakerctl.app.context import AppContext
from speakerctl.cap import MAX_BYTES as CAP_MAX_BYTES
from speakerctl.controller.service import Controller
from speakerctl.errors import NeedsConfirmation, NotSignedIn, UsageError
from speakerctl.i18n import _
from speakerctl.protocol import Ping, Reboot, SetVolume
from speakerctl.web.auth import (
    LANGUAGE_COOKIE,
    SESSION_COOKIE,
    VISIT,
    YEAR_S,
    Guard,
    Visit,
    safe_next,
    set_cookie,
    signed_in,
)
from speakerctl.web.live import LiveHub
from speakerctl.web.operations import in_background, read_body
from speakerctl.web.render import LANGUAGES, catalogue, language_values, respond

log = logging.getLogger(__name__)
REMOTE_TIMEOUT_S = 10.0
STOP_WAIT_S = 5.0
"""How long the stop button waits for the clusters to confirm before it answers."""
APPROVE_ANSWER_S = 1.0
"""An approval answers once this long has passed (the airing goes on in the background) or at once if
it was refused."""


def answer(request: web.Request, template: str, status: int = 200, **values: Any) -> web.Response:
    """A fragment in the request's language."""
    visit: Visit = request[VISIT]
    context = language_values(visit.lang) | {"csrf": visit.csrf} | values
    return respond(request, f"parts/{template}.html", visit.lang, context, status)


class Actions:
    """The POST side of the console (and the sign-in pages)."""

    def __init__(self, controller: Controller, hub: LiveHub, guard: Guard) -> None:
        self.controller, self.hub, self.guard = controller, hub, guard
        self.tasks: set[asyncio.Task[Any]] = set()
        self.cap_desk = cap.Desk(AppContext(controller.settings, controller.clock), controller)

    def routes(self, app: web.Application) -> None:
        """Register the actions."""
        app.router.add_get("/login", self.login_form, name="login")
        app.router.add_post("/login", self.login, name="login-post")
        app.router.add_post("/logout", self.logout, name="logout")
        app.router.add_get("/language/{lang}", self.language, name="language")
        app.router.add_post("/broadcasts", self.broadcast, name="broadcast-post")
        app.router.add_post("/broadcasts/{id}/stop", self.stop_broadcast, name="stop")
        app.router.add_post("/approvals/{id:\\d+}/approve", self.approve, name="approve")
        app.router.add_post("/approvals/{id:\\d+}/reject", self.reject, name="reject")
        app.router.add_post("/alerts/{id:\\d+}/acknowledge", self.acknowledge, name="acknowledge")
        app.router.add_post("/devices/{id}/{action:volume|ping|reboot}", self.remote, name="remote")
        app.router.add_post("/cap/alerts", self.cap_alert, name="cap-post")

    async def login_form(self, request: web.Request) -> web.Response:
        """The sign-in form (already signed in: the overview)."""
        visit: Visit = request[VISIT]
        if visit.actor is not None:
            raise web.HTTPSeeOther("/")
        return self._login_page(request, "", "", 200)

    def _login_page(self, request: web.Request, name: str, error: str, status: int) -> web.Response:
        visit: Visit = request[VISIT]
        context = language_values(visit.lang) | {
            "actor": None, "csrf": visit.csrf, "page": "login", "here": request.path_qs, "live": None,
            "next": safe_next(request.query.get("next", "/")), "name": name, "error": error,
        }  # fmt: skip
        return respond(request, "login.html", visit.lang, context, status)

    async def login(self, request: web.Request) -> web.Response:
        """Check the password, open a session and go where the user was going."""
        form = await request.post()
        name, password = str(form.get("name", "")), str(form.get("password", ""))
        try:
            _, token = await self.guard.sign_in(name, password)
        except NotSignedIn as exc:
            return self._login_page(request, name, str(exc), 401)
        response = web.HTTPSeeOther(safe_next(str(form.get("next", "/"))))
        set_cookie(response, SESSION_COOKIE, token)
        raise response

    async def logout(self, request: web.Request) -> web.Response:
        """End the session and forget its cookie."""
        await self.guard.sign_out(request[VISIT].token)
        response = web.HTTPSeeOther("/login")
        response.del_cookie(SESSION_COOKIE, path="/")
        raise response

    async def language(self, request: web.Request) -> web.Response:
        """Switch the console's language for this browser, then go back."""
        lang = request.match_info["lang"]
        if lang not in LANGUAGES:
            raise web.HTTPNotFound(text=f"no language {lang!r}; use {' or '.join(LANGUAGES)}\n")
        response = web.HTTPSeeOther(safe_next(request.query.get("next", "/")))
        set_cookie(response, LANGUAGE_COOKIE, lang, YEAR_S)
        raise response

    async def broadcast(self, request: web.Request) -> web.Response:
        """Start a broadcast and follow it in the background; the overview shows its progress live."""
        form = await request.post()
        targets = [str(t) for t in form.getall("to", [])]
        priority = str(form.get("priority", "normal"))
        bulletin = number(form.get("bulletin"), "bulletin")
        confirmed = form.get("confirmed") == "yes"
        try:
            req = await asyncio.to_thread(
                broadcasts.routed, self.controller, signed_in(request), bulletin, targets, priority,
                confirmed=confirmed,
            )  # fmt: skip
        except NeedsConfirmation as exc:  # province-wide or emergency: ask, then post again confirmed
            fields = [(k, str(v)) for k, v in form.items() if k not in ("csrf", "confirmed")]
            return answer(
                request, "confirm", 409, message=str(exc), hint="", action="/broadcasts", fields=fields
            )
        self._background(broadcasts.follow(self.controller, req), f"broadcast {req.broadcast_id}")
        return answer(request, "started", broadcast_id=req.broadcast_id)

    def _background(self, work: Awaitable[Any], what: str) -> None:
        in_background(self.tasks, work, what)
        self.hub.poke()

    @property
    def ctx(self) -> AppContext:
        """The running controller's settings and clock, for the services that take a context."""
        return AppContext(self.controller.settings, self.controller.clock)

    async def stop_broadcast(self, request: web.Request) -> web.Response:
        """Stop a running broadcast on every cluster still to air it; answered once they confirm."""
        view = await stops.stop(
            self.ctx,
            signed_in(request),
            request.match_info["id"],
            wait_s=STOP_WAIT_S,
            controller=self.controller,
        )
        self.hub.poke()
        gettext = catalogue(request[VISIT].lang).gettext
        text = gettext("Broadcast {id} stopped on {clusters} clusters; {confirmed} confirmed.")
        message = text.format(id=view.broadcast, clusters=view.clusters, confirmed=view.confirmed)
        return answer(request, "notice", message=message)

    async def approve(self, request: web.Request) -> web.Response:
        """Approve an item: it airs (followed in the background), or its schedule is installed."""
        item_id, actor = int(request.match_info["id"]), signed_in(request)
        approving = approvals.approve(self.ctx, item_id, actor=actor, controller=self.controller)
        task = asyncio.get_running_loop().create_task(approving)
        done, _pending = await asyncio.wait({task}, timeout=APPROVE_ANSWER_S)
        if done:
            task.result()  # a refusal (not an approver here, decided already) is answered now
        else:
            self._background(task, f"approved item {item_id}")
        self.hub.poke()
        gettext = catalogue(request[VISIT].lang).gettext
        return answer(request, "notice", message=gettext("Item {id} approved.").format(id=item_id))

    async def reject(self, request: web.Request) -> web.Response:
        """Reject an item with the reason its author reads."""
        reason = str((await request.post()).get("reason", ""))
        item_id, actor = int(request.match_info["id"]), signed_in(request)
        await asyncio.to_thread(approvals.reject, self.ctx, item_id, reason, actor=actor)
        gettext = catalogue(request[VISIT].lang).gettext
        return answer(request, "notice", message=gettext("Item {id} rejected.").format(id=item_id))

    async def acknowledge(self, request: web.Request) -> web.Response:
        """Acknowledge an alert; the alert list shows who did, live."""
        alert_id = int(request.match_info["id"])
        now = self.controller.clock.now()
        await asyncio.to_thread(alerts.acknowledge, self.controller.store, signed_in(request), alert_id, now)
        self.hub.poke()
        gettext = catalogue(request[VISIT].lang).gettext
        return answer(request, "notice", message=gettext("Alert {id} acknowledged.").format(id=alert_id))

    async def remote(self, request: web.Request) -> web.Response:
        """Volume, ping or reboot on one cluster, answered when it acknowledges (or times out)."""
        device_id, action = request.match_info["id"], request.match_info["action"]
        body = await self._remote_body(request, action)
        result = await remote.act_on(self.controller, signed_in(request), device_id, body, REMOTE_TIMEOUT_S)
        self.hub.poke()
        return answer(request, "remote_result", r=result)

    async def _remote_body(self, request: web.Request, action: str) -> SetVolume | Reboot | Ping:
        if action == "volume":
            return remote.volume_action(number((await request.post()).get("volume"), "volume"))
        return Reboot() if action == "reboot" else Ping()

    async def cap_alert(self, request: web.Request) -> web.Response:
        """Take a CAP 1.2 alert (the request's body) on the signed-in user's authority: 201 with what
        became of it, 200 for a duplicate, 422 with the reason if it is refused."""
        data = await read_body(request, CAP_MAX_BYTES)  # the desk refuses what is larger
        actor = signed_in(request)
        view = await self.cap_desk.receive(data, f"post:{actor.name}", actor=actor)
        self.hub.poke()
        return web.json_response(view.dump(), status=200 if view.duplicate else 201)

    async def stop(self) -> None:
        """Cancel the broadcasts still being followed (the controller resumes them on its next start)."""
        await self.cap_desk.close()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


def number(value: Any, what: str) -> int:
    """A whole number from a form field (UsageError if it is not one)."""
    try:
        return int(str(value))
    except ValueError:
        raise UsageError(
            _("{what} must be a whole number, not {value!r}").format(what=what, value=value)
        ) from None
