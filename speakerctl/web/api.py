"""The versioned HTTP API, /api/v1/: thin handlers over the app services, answering with their views.

Every operation is a row of `OPERATIONS` (method, path, inputs, answers); the dispatcher checks the bearer
token (an API token of a user: `app.tokens`), validates path, query and body with the row's models, calls
the handler with the token's Actor and answers JSON. Refusals are JSON too: `{"error", "hint"}` with
the status the console uses (400 bad value, 401 no valid token, 403 not allowed, 404 unknown, 409 needs
confirmation, 422 a CAP alert refused; 415 a body of a media type the row does not list). A row with a
`Text` body (a CAP alert's XML) hands its handler the bytes. The OpenAPI document (`openapi.py`) is
generated from the same rows and the public feed's (`public.py`).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ValidationError

from speakerctl import i18n
from speakerctl.app import (
    accounts,
    alerts,
    approvals,
    broadcasts,
    cap,
    fleet,
    records,
    schedules,
    scoped,
    stops,
    tokens,
)
from speakerctl.app import views as v
from speakerctl.app.access import Actor
from speakerctl.app.context import AppContext
from speakerctl.cap import MAX_BYTES as CAP_MAX_BYTES
from speakerctl.controller.fleetview import FleetSnapshot
from speakerctl.controller.health import HealthPolicy
from speakerctl.controller.service import Controller
from speakerctl.errors import AwaitsApproval, SpeakerctlError
from speakerctl.i18n import _
from speakerctl.web import apimodels as m
from speakerctl.web import public
from speakerctl.web.errors import status_of
from speakerctl.web.openapi import document, dumps
from speakerctl.web.operations import PREFIX, Call, Operation, Reply, Text, in_background, read_body
from speakerctl.web.render import LANGUAGES, speaking

log = logging.getLogger(__name__)
SnapshotReader = Callable[[], Awaitable[FleetSnapshot]]
"""The server's fleet snapshot, read at most once a second and shared with the console."""
STOP_WAIT_S = 5.0
"""How long a stop waits for the clusters to confirm before it answers."""
APPROVE_ANSWER_S = 1.0
"""An approval that airs answers 202 once this long has passed; the airing goes on in the background."""


class Api:
    """The handlers of /api/v1, on the running controller."""

    def __init__(
        self, controller: Controller, policy: HealthPolicy, snapshot: SnapshotReader, desk: cap.Desk
    ) -> None:
        self.controller, self.policy, self.snapshot = controller, policy, snapshot
        self.desk = desk
        """The console's CAP desk, shared: one owner of the airings it follows."""
        self.tasks: set[asyncio.Task[Any]] = set()

    @property
    def ctx(self) -> AppContext:
        """The running controller's settings and clock."""
        return AppContext(self.controller.settings, self.controller.clock)

    def routes(self, app: web.Application) -> None:
        """Register every operation, and the OpenAPI document."""
        for op in OPERATIONS:
            app.router.add_route(op.method, op.path, self._endpoint(op), name=f"api-{op.name}")

    async def stop(self) -> None:
        """Cancel the broadcasts still being followed (the controller resumes them on its next start)."""
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    def _endpoint(self, op: Operation) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def endpoint(request: web.Request) -> web.StreamResponse:
            with speaking(_language(request)):  # refusals in the language the client asked for
                try:
                    reply = await op.handler(self, await self._call(request, op))
                except ValidationError as exc:
                    hint = _("see /api/v1/openapi.json for the accepted values")
                    return error(400, _first_error(exc), hint)
                except SpeakerctlError as exc:
                    return error(status_of(exc)[0], str(exc), exc.hint)
            return _reply(reply)

        return endpoint

    async def _call(self, request: web.Request, op: Operation) -> Call:
        actor = None if op.public else await self._actor(request)
        path = _parsed(op.path_model, dict(request.match_info))
        query = _parsed(op.query, dict(request.query))
        body = _parsed(op.body, await _json(request)) if op.body is not None else None
        if op.text is not None:
            body = await _text(request, op.text)
        return Call(request, actor, path, query, body)

    async def _actor(self, request: web.Request) -> Actor:
        scheme, _sep, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise web.HTTPUnauthorized(
                text=_dumps({"error": _("no API token"), "hint": auth_hint()}),
                content_type="application/json",
                headers={"WWW-Authenticate": "Bearer"},
            )
        store, now = self.controller.store, self.controller.clock.now()
        return await asyncio.to_thread(tokens.actor_for_token, store, token.strip(), now)

    def _background(self, work: Awaitable[Any], what: str) -> None:
        in_background(self.tasks, work, what)

    async def _run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """A blocking app service, off the event loop."""
        return await asyncio.to_thread(fn, *args, **kwargs)

    # -- the handlers ---------------------------------------------------------------------------------

    async def openapi(self, call: Call) -> Reply:
        """This document: the OpenAPI 3.1 description of /api/v1 (no token needed)."""
        return Reply(200, openapi_document())

    async def whoami(self, call: Call) -> Reply:
        """The user the token acts as: name, role and zone."""
        return Reply(200, accounts.whoami_view(call.actor, signed_in=True))

    async def fleet(self, call: Call) -> Reply:
        """The fleet at a glance, within the user's zones (the object `fleet status --json` prints)."""
        snap = await self.snapshot()
        return Reply(200, await self._run(scoped.fleet, self.controller.store, snap, call.actor))

    async def zones(self, call: Call) -> Reply:
        """The zones in use within the user's zones, each with the clusters directly in it."""
        return Reply(200, await self._run(scoped.zones, self.controller.store, call.actor))

    async def devices(self, call: Call) -> Reply:
        """Clusters with their effective state, in a zone (default: the user's) and below."""
        q: m.DevicesQuery = call.query
        wanted = scoped.DeviceQuery(q.zone, q.state, q.fault)
        snap = await self.snapshot()
        return Reply(200, await self._run(scoped.devices, self.controller.store, snap, call.actor, wanted))

    async def device(self, call: Call) -> Reply:
        """One cluster: its record, recent statuses, alerts and remote actions."""
        found = await self._run(fleet.device_seen_by, self.controller.store, call.actor, call.path.id)
        return Reply(200, found)

    async def bulletins(self, call: Call) -> Reply:
        """The bulletin library."""
        return Reply(200, await self._run(scoped.bulletins, self.controller.store, call.actor))

    async def bulletin(self, call: Call) -> Reply:
        """A bulletin with its encodings and where and when it aired."""
        args = (self.ctx, self.controller.store, call.actor, call.path.id)
        return Reply(200, await self._run(scoped.bulletin, *args))

    async def broadcasts(self, call: Call) -> Reply:
        """The latest broadcasts that reached into the user's zones, newest first, with their reach."""
        now, store = self.controller.clock.now(), self.controller.store
        found = await self._run(scoped.broadcasts, store, call.actor, now, self.policy, call.query.limit)
        return Reply(200, found)

    async def broadcast(self, call: Call) -> Reply:
        """One broadcast's report: counts per state, outcome per zone, clusters that did not play."""
        args = (self.ctx, self.controller.store, call.actor, call.path.id)
        return Reply(200, await self._run(scoped.broadcast, *args))

    async def start_broadcast(self, call: Call) -> Reply:
        """Air a bulletin now (202: followed in the background), or queue it for approval (202, `items`).

        An emergency or province-wide broadcast needs `confirmed: true` (else 409 with the question).
        """
        b: m.BroadcastBody = call.body
        try:
            req = await self._run(
                broadcasts.routed, self.controller, call.actor, b.bulletin, b.targets, b.priority,
                confirmed=b.confirmed,
            )  # fmt: skip
        except AwaitsApproval as held:
            return Reply(202, v.AcceptedView(broadcast=None, items=list(held.items), message=str(held)))
        self._background(broadcasts.follow(self.controller, req), f"broadcast {req.broadcast_id}")
        message = _("broadcast {id} on air").format(id=req.broadcast_id)
        started = v.AcceptedView(broadcast=req.broadcast_id, items=[], message=message)
        return Reply(202, started)

    async def stop_broadcast(self, call: Call) -> Reply:
        """Stop a broadcast on every cluster still to air it; answered once they confirm (or 5 s pass)."""
        view = await stops.stop(
            self.ctx, call.actor, call.path.id, wait_s=STOP_WAIT_S, controller=self.controller
        )
        return Reply(200, view)

    async def schedules(self, call: Call) -> Reply:
        """The schedules that air in the user's zones, with their next air time."""
        return Reply(200, await self._run(scoped.schedules, self.ctx, self.controller.store, call.actor))

    async def schedule(self, call: Call) -> Reply:
        """One schedule: its next air times and what became of its recent runs."""
        args = (self.ctx, self.controller.store, call.actor, call.path.id)
        return Reply(200, await self._run(scoped.schedule, *args))

    async def add_schedule(self, call: Call) -> Reply:
        """Add a schedule (201, with the schedules it overlaps), or queue it for approval (202, `items`)."""
        b: m.ScheduleBody = call.body
        tz = self.controller.settings.timezone
        rule = schedules.build_rule(
            tz, **b.when(), repeat=b.repeat, gap=b.gap_s, valid_from=b.valid_from, valid_until=b.valid_until
        )
        spec = schedules.ScheduleSpec(
            b.bulletin, b.targets, rule, b.priority, b.on_preempt, b.window_s, b.name
        )
        try:
            added = await self._run(schedules.add, self.ctx, spec, actor=call.actor, confirmed=b.confirmed)
        except AwaitsApproval as held:
            return Reply(202, v.AcceptedView(broadcast=None, items=list(held.items), message=str(held)))
        return Reply(201, schedules.added_view(added))

    async def pause_schedule(self, call: Call) -> Reply:
        """Pause a schedule (what `serve` pushed to clusters is stopped)."""
        return await self._paused(call, True)

    async def resume_schedule(self, call: Call) -> Reply:
        """Resume a paused schedule."""
        return await self._paused(call, False)

    async def _paused(self, call: Call, paused: bool) -> Reply:
        await self._run(schedules.set_paused, self.ctx, call.path.id, paused, actor=call.actor)
        args = (self.ctx, self.controller.store, call.actor, call.path.id)
        return Reply(200, await self._run(scoped.schedule, *args))

    async def remove_schedule(self, call: Call) -> Reply:
        """Delete a schedule (its history stays)."""
        await self._run(schedules.remove, self.ctx, call.path.id, actor=call.actor)
        return Reply(204)

    async def plays(self, call: Call) -> Reply:
        """The play log of a period: every airing on every cluster, in a zone (default: the user's)."""
        q: m.PlaysQuery = call.query
        args = (self.ctx, self.controller.store, call.actor, q.since, q.until, q.zone)
        return Reply(200, await self._run(scoped.plays, *args))

    async def alerts(self, call: Call) -> Reply:
        """Alerts, newest first (open ones unless `open=false`), in a zone (default: the user's)."""
        q: m.AlertsQuery = call.query
        found = await self._run(scoped.alerts, self.controller.store, call.actor, q.zone, q.open, q.limit)
        return Reply(200, found)

    async def acknowledge(self, call: Call) -> Reply:
        """Acknowledge an open alert (the audit log keeps who and when)."""
        now = self.controller.clock.now()
        await self._run(alerts.acknowledge, self.controller.store, call.actor, call.path.id, now)
        return Reply(204)

    async def approvals(self, call: Call) -> Reply:
        """The approval queue of a zone (default: the user's) and below, in the order to decide it."""
        q: m.ApprovalsQuery = call.query
        zone = None
        if q.zone:
            zone = (await self._run(scoped.within, self.controller.store, call.actor, q.zone))[1]
        found = await self._run(
            approvals.queue,
            self.ctx,
            actor=call.actor,
            zone_id=zone,
            decided=q.decided,
            store=self.controller.store,
        )
        return Reply(200, found)

    async def approve(self, call: Call) -> Reply:
        """Approve an item: 200 with what it made, or 202 while its broadcast airs in the background."""
        item_id = call.path.id
        task = asyncio.get_running_loop().create_task(
            approvals.approve(self.ctx, item_id, actor=call.actor, controller=self.controller)
        )
        done, _pending = await asyncio.wait({task}, timeout=APPROVE_ANSWER_S)
        if done:
            return Reply(200, task.result())
        self._background(task, f"approved item {item_id}")
        return Reply(202, records.item(await self._run(self.controller.store.approvals.get, item_id)))

    async def reject(self, call: Call) -> Reply:
        """Reject an item with the reason its author reads."""
        args = (self.ctx, call.path.id, call.body.reason)
        return Reply(200, await self._run(approvals.reject, *args, actor=call.actor))

    async def cap_alerts(self, call: Call) -> Reply:
        """The CAP messages received, newest first, with what became of each.

        A user of a zone sees those whose targets reach into it and those they sent themselves.
        """
        found = await self._run(scoped.cap_alerts, self.controller.store, call.actor, call.query.limit)
        return Reply(200, found)

    async def post_cap_alert(self, call: Call) -> Reply:
        """Take a CAP 1.2 alert (the body, as XML) on the user's authority, as the feed would.

        201 with what became of it (`state`: airing, queued, rehearsal, ...), 200 with the earlier record
        for a message already received (same sender, identifier and sent), 422 with the reason when it is
        not a valid CAP 1.2 document, 403 for a user who may not broadcast (or not where it reaches).
        """
        view = await self.desk.receive(call.body, f"api:{call.actor.name}", actor=call.actor)
        return Reply(200 if view.duplicate else 201, view)


def auth_hint() -> str:
    """How to authenticate."""
    return _("send Authorization: Bearer <token>; create one with `speakerctl user token create USER`")


def _dumps(data: object) -> str:
    return json.dumps(data, ensure_ascii=False)


def error(status: int, message: str, hint: str = "") -> web.Response:
    """A refusal as JSON."""
    return web.json_response(
        {"error": message, "hint": hint}, status=status, dumps=lambda d: json.dumps(d, ensure_ascii=False)
    )


def _reply(reply: Reply) -> web.Response:
    if reply.data is None:
        return web.Response(status=reply.status)
    data = reply.data
    if isinstance(data, v.View):
        data = data.dump()
    elif isinstance(data, list):
        data = v.dump_all(data)
    return web.json_response(data, status=reply.status, dumps=lambda d: json.dumps(d, ensure_ascii=False))


def _language(request: web.Request) -> str:
    """The first language of Accept-Language that speakerctl speaks; else the server's own."""
    for part in request.headers.get("Accept-Language", "").split(","):
        tag = part.split(";")[0].strip().lower()[:2]
        if tag in LANGUAGES:
            return tag
    return i18n.language()


def _parsed(model: type[BaseModel] | None, data: Any) -> Any:
    return None if model is None else model.model_validate(data)


async def _json(request: web.Request) -> Any:
    try:
        return await request.json()
    except ValueError as exc:
        raise web.HTTPBadRequest(
            text=_dumps(
                {
                    "error": _("the body is not JSON: {error}").format(error=exc),
                    "hint": _("send a JSON object"),
                }
            ),
            content_type="application/json",
        ) from exc


async def _text(request: web.Request, text: Text) -> bytes:
    """A body that is not JSON, at most `text.max_bytes` and a byte (its reader refuses it as too large)."""
    if request.content_type not in text.media_types:
        raise web.HTTPUnsupportedMediaType(
            text=_dumps(
                {
                    "error": _("a body of type {type} is not accepted here").format(
                        type=request.content_type
                    ),
                    "hint": _("send Content-Type: {types}").format(types=" or ".join(text.media_types)),
                }
            ),
            content_type="application/json",
        )
    return await read_body(request, text.max_bytes)


def _first_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "body"
    return f"{where}: {first['msg']}"


def _op(method: str, path: str, handler: Any, tag: str, answers: dict[int, Any], **more: Any) -> Operation:
    return Operation(method, PREFIX + path, handler.__name__, tag, handler, answers, **more)


ACCEPTED = {202: "On air (`broadcast`), or waiting for approval (`items`)."}
CAP_XML = Text(("application/cap+xml", "application/xml"), CAP_MAX_BYTES)
CAP_POSTED = {
    200: "Already received: the earlier record (`duplicate: true`).",
    201: "Received: what became of it (`state`).",
    422: "Not a valid CAP 1.2 alert (too large, not XML, a DTD, or not valid against the schema).",
}
OPERATIONS: tuple[Operation, ...] = (
    _op("GET", "/openapi.json", Api.openapi, "api", {200: dict}, public=True),
    _op("GET", "/whoami", Api.whoami, "api", {200: v.WhoamiView}),
    _op("GET", "/fleet", Api.fleet, "fleet", {200: v.FleetView}),
    _op("GET", "/zones", Api.zones, "fleet", {200: list[v.ZoneView]}),
    _op("GET", "/devices", Api.devices, "fleet", {200: list[v.DeviceHealthView]}, query=m.DevicesQuery),
    _op("GET", "/devices/{id}", Api.device, "fleet", {200: v.DeviceDetailView}, path_model=m.TextId),
    _op("GET", "/bulletins", Api.bulletins, "bulletins", {200: list[v.BulletinView]}),
    _op("GET", "/bulletins/{id}", Api.bulletin, "bulletins", {200: v.BulletinDetailView},
        path_model=m.NumberId),
    _op("GET", "/broadcasts", Api.broadcasts, "broadcasts", {200: list[v.BroadcastReachView]},
        query=m.BroadcastsQuery),
    _op("POST", "/broadcasts", Api.start_broadcast, "broadcasts", {202: v.AcceptedView}, body=m.BroadcastBody,
        answer_text=ACCEPTED),
    _op("GET", "/broadcasts/{id}", Api.broadcast, "broadcasts", {200: v.BroadcastReportView},
        path_model=m.TextId),
    _op("POST", "/broadcasts/{id}/stop", Api.stop_broadcast, "broadcasts", {200: v.StopView},
        path_model=m.TextId),
    _op("GET", "/schedules", Api.schedules, "schedules", {200: list[v.ScheduleView]}),
    _op("POST", "/schedules", Api.add_schedule, "schedules", {201: v.AddedScheduleView, 202: v.AcceptedView},
        body=m.ScheduleBody, answer_text={201: "Added.", 202: "Waiting for approval (`items`)."}),
    _op("GET", "/schedules/{id}", Api.schedule, "schedules", {200: v.ScheduleDetailView},
        path_model=m.TextId),
    _op("DELETE", "/schedules/{id}", Api.remove_schedule, "schedules", {204: None}, path_model=m.TextId,
        answer_text={204: "Deleted."}),
    _op("POST", "/schedules/{id}/pause", Api.pause_schedule, "schedules", {200: v.ScheduleDetailView},
        path_model=m.TextId),
    _op("POST", "/schedules/{id}/resume", Api.resume_schedule, "schedules", {200: v.ScheduleDetailView},
        path_model=m.TextId),
    _op("GET", "/plays", Api.plays, "reports", {200: list[v.PlayView]}, query=m.PlaysQuery),
    _op("GET", "/alerts", Api.alerts, "alerts", {200: list[v.AlertView]}, query=m.AlertsQuery),
    _op("POST", "/alerts/{id}/acknowledge", Api.acknowledge, "alerts", {204: None}, path_model=m.NumberId,
        answer_text={204: "Acknowledged."}),
    _op("GET", "/approvals", Api.approvals, "approvals", {200: list[v.ItemView]}, query=m.ApprovalsQuery),
    _op("POST", "/approvals/{id}/approve", Api.approve, "approvals", {200: v.ApprovedView, 202: v.ItemView},
        path_model=m.NumberId, answer_text={202: "Approved; its broadcast airs in the background."}),
    _op("POST", "/approvals/{id}/reject", Api.reject, "approvals", {200: v.ItemView}, path_model=m.NumberId,
        body=m.RejectBody),
    _op("GET", "/cap/alerts", Api.cap_alerts, "cap", {200: list[v.CapAlertView]}, query=m.CapAlertsQuery),
    _op("POST", "/cap/alerts", Api.post_cap_alert, "cap",
        {200: v.CapAlertView, 201: v.CapAlertView, 422: m.ErrorBody}, text=CAP_XML, answer_text=CAP_POSTED),
)  # fmt: skip


@functools.cache
def openapi_document() -> dict[str, Any]:
    """The OpenAPI document of these operations."""
    return document(OPERATIONS + public.OPERATIONS)


def openapi_text() -> str:
    """The OpenAPI document as docs/openapi.json holds it."""
    return dumps(openapi_document())
