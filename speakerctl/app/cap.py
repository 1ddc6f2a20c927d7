"""CAP 1.2 alerts on the air: the desk where alerts arrive (feed, POST, file) and what each becomes.

What happens to a message (its `state` in the store):
- `airing`: an Actual alert the rule table makes an emergency airs at once on the clusters inside its
  area, then again every `cap_repeat_min` until it expires (`tick`); `expired` after that. An emergency
  with no `expires` airs once (`ended`): CAP leaves its end to the recipient, and a loop without an
  end is worse than one airing.
- `queued`: any other Actual alert waits in the approval queue (app/approvals.py) at its level.
- `rehearsal`: Exercise and Test alerts are composed like real ones and recorded; with `cap_test_zone`
  set they air once there, at normal priority, never at the emergency volume.
- `replaced` / `cancelled`: an Update replaces the messages it references, a Cancel withdraws them:
  their repeats end, what is on air from them is stopped (app/stops.py), their queued items are
  rejected. The Update or Cancel itself is stored too (a Cancel as `applied`).
- `expired` (already at arrival), `no_target` (no cluster inside the area), `ignored` (System/Draft,
  Ack/Error), `failed` (the audio could not be composed).
A message already received (same sender, identifier, sent) is a duplicate and changes nothing.

Automatic sources act as the system actor `cap` (an operator of every zone): the feed was configured
by an administrator, so its emergencies need no one's confirmation, exactly as a schedule's occurrence
airs without one. A POST or an import is first authorized for the user who sent it (BROADCAST on the
zones the alert reaches) and audited with their name.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path

from speakerctl.app import approvals, audit, policy, stops, views
from speakerctl.app.access import Action, Actor, Role, authorize
from speakerctl.app.context import AppContext
from speakerctl.app.runtime import running_controller
from speakerctl.audio import Chime, Composition, Speech, Voice
from speakerctl.cap import (
    MAX_BYTES,
    Alert,
    AlertKey,
    Info,
    MsgType,
    Point,
    RuleTable,
    Status,
    load_rules,
    parse_alert,
)
from speakerctl.cap.area import covered
from speakerctl.controller import library
from speakerctl.controller.service import BroadcastRequest, Controller, new_broadcast_id
from speakerctl.errors import AlertRejected, SpeakerctlError
from speakerctl.fleet import ZoneTree
from speakerctl.i18n import _
from speakerctl.protocol import Priority
from speakerctl.store import CapRecord, Decision, ItemState, Store

log = logging.getLogger(__name__)
SYSTEM = Actor("cap", Role.OPERATOR, None)
"""The actor of alerts from automatic sources."""
STOP_WAIT_S = 5.0


class State(StrEnum):
    """What became of a CAP message (see the module's docstring)."""

    AIRING = "airing"
    ENDED = "ended"
    QUEUED = "queued"
    REHEARSAL = "rehearsal"
    REPLACED = "replaced"
    CANCELLED = "cancelled"
    APPLIED = "applied"
    EXPIRED = "expired"
    NO_TARGET = "no_target"
    IGNORED = "ignored"
    FAILED = "failed"


WITHDRAWN = frozenset({State.REPLACED, State.CANCELLED, State.EXPIRED, State.ENDED})


class Desk:
    """Receives CAP messages for one running controller and airs them; `tick` repeats emergencies."""

    def __init__(self, ctx: AppContext, controller: Controller, rules: RuleTable | None = None) -> None:
        self.ctx = ctx
        self.controller = controller
        self.store: Store = controller.store
        self.rules = rules or load_rules(ctx.settings.cap_rules)
        self._tasks: set[asyncio.Task[None]] = set()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Desk]:
        """The desk for the block; airings still going at its end are cancelled."""
        try:
            yield self
        finally:
            await self.close()

    async def close(self) -> None:
        """Cancel the airings still being followed (`serve` resumes their broadcasts on its next start)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def idle(self) -> None:
        """Wait until every airing started so far has ended."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    @property
    def repeat(self) -> timedelta:
        """How often an emergency airs again."""
        return timedelta(minutes=self.ctx.settings.cap_repeat_min)

    async def receive(self, data: bytes, source: str, *, actor: Actor = SYSTEM) -> views.CapAlertView:
        """Act on one CAP document; AlertRejected (logged with its reason) if it is not a valid one,
        NotAllowed before anything is read if `actor` may not broadcast at all."""
        # The role first, before anything is read: a viewer's Test alert is not stored either.
        authorize(actor, Action.BROADCAST, [], ZoneTree(()))
        if len(data) > MAX_BYTES:
            raise AlertRejected(_("a CAP alert is at most {limit} bytes").format(limit=MAX_BYTES))
        try:
            alert = parse_alert(data)
        except AlertRejected as exc:
            log.warning("CAP alert from %s rejected: %s", source, exc)
            raise
        known = await asyncio.to_thread(self.store.cap.find, *_key(alert.key))
        if known is not None:
            log.info("CAP alert %s from %s already received", alert.key, source)
            return cap_view(known, duplicate=True)
        return cap_view(await self._act(alert, source, actor))

    async def _act(self, alert: Alert, source: str, actor: Actor) -> CapRecord:
        now, info = self.ctx.clock.now(), alert.info()
        record = _record(alert, info, source, now, self.rules)
        if alert.msg_type in (MsgType.UPDATE, MsgType.CANCEL):
            withdrawn = State.CANCELLED if alert.msg_type is MsgType.CANCEL else State.REPLACED
            await self._withdraw(alert, withdrawn, actor)
            if alert.msg_type is MsgType.CANCEL:
                return await self._stored(
                    record, State.APPLIED, _("withdrew {n}").format(n=len(alert.references))
                )
        state, detail = self._triage(alert, info, now)
        if state is not None or info is None:
            return await self._stored(record, state or State.IGNORED, detail)
        targets = await asyncio.to_thread(self._targets, info)
        if not targets:
            return await self._stored(record, State.NO_TARGET, _("no cluster inside the alert's area"))
        authorize(
            actor,
            Action.BROADCAST,
            await asyncio.to_thread(policy.zones_of, self.store, targets),
            self._tree(),
        )
        return await self._compose_and_route(
            replace(record, targets=tuple(sorted(targets))), alert, info, actor
        )

    def _triage(self, alert: Alert, info: Info | None, now: datetime) -> tuple[State | None, str]:
        """A final state for a message that will not air (with why), else (None, "")."""
        if alert.msg_type not in (MsgType.ALERT, MsgType.UPDATE) or alert.status in (
            Status.SYSTEM,
            Status.DRAFT,
        ):
            return State.IGNORED, _("{status} {kind} is not for the public").format(
                status=alert.status.value, kind=alert.msg_type.value
            )
        if info is None:
            return State.IGNORED, _("the alert has no info block")
        if info.expires is not None and info.expires <= now:
            return State.EXPIRED, _("expired before it arrived")
        return None, ""

    def _tree(self) -> ZoneTree:
        return policy.zone_tree(self.store)

    def _targets(self, info: Info) -> set[str]:
        """Clusters inside the polygons and circles, and zones the geocodes name (known zones only)."""
        points = [
            Point(d.id, d.lat, d.lon)
            for d in self.store.devices.all()
            if d.lat is not None and d.lon is not None
        ]
        zones = {z.id for z in self.store.zones.all()}
        return covered(info.areas, points) | (self.rules.zones(info.areas) & zones)

    async def _compose_and_route(
        self, record: CapRecord, alert: Alert, info: Info, actor: Actor
    ) -> CapRecord:
        try:
            bulletin_id = await asyncio.to_thread(self._compose, info, alert.key)
        except SpeakerctlError as exc:
            log.warning("CAP alert %s could not be composed: %s", alert.key, exc)
            return await self._stored(record, State.FAILED, str(exc))
        record = replace(record, bulletin_id=bulletin_id)
        if alert.status is not Status.ACTUAL:
            return await self._rehearse(record)
        if record.priority == Priority.EMERGENCY:
            return await self._emergency(record, actor)
        return await self._queue(record, actor)

    def _compose(self, info: Info, key: AlertKey) -> int:
        """The alert read out: a chime, then headline, description and instruction in Vietnamese."""
        text = ". ".join(
            t.rstrip(". ") for t in (info.headline or info.event, info.description, info.instruction) if t
        )
        voice = Voice(self.ctx.settings.cap_voice)
        title = f"CAP {key.identifier}: {info.headline or info.event}"[:200]
        composition = Composition((Chime(), Speech(text, voice, f"CAP {key.identifier}")), title)
        done = library.add_bulletin(
            self.store, self.ctx.settings, self.ctx.clock, composition, created_by=SYSTEM.name
        )
        return done.bulletin.id

    async def _emergency(self, record: CapRecord, actor: Actor) -> CapRecord:
        now = self.ctx.clock.now()
        following = _next(now, self.repeat, record.expires)
        state = State.AIRING if record.expires is not None else State.ENDED
        stored = await self._stored(replace(record, next_air_at=following), state, _("airs at once"))
        self._air(stored, record.targets, Priority.EMERGENCY, actor)
        return stored

    async def _rehearse(self, record: CapRecord) -> CapRecord:
        zone = self.ctx.settings.cap_test_zone
        if not zone:
            return await self._stored(record, State.REHEARSAL, _("recorded, not aired (no cap_test_zone)"))
        stored = await self._stored(
            replace(record, targets=(zone,)), State.REHEARSAL, _("aired once in the test zone")
        )
        self._air(stored, (zone,), Priority.NORMAL, SYSTEM)
        return stored

    async def _queue(self, record: CapRecord, actor: Actor) -> CapRecord:
        assert record.bulletin_id is not None
        level = Priority(record.priority).wire
        items = await asyncio.to_thread(
            approvals.submit, self.ctx, record.bulletin_id, record.targets, level, actor=actor
        )
        detail = _("waits for approval: items {ids}").format(ids=", ".join(str(i.id) for i in items))
        return await self._stored(replace(record, items=tuple(i.id for i in items)), State.QUEUED, detail)

    async def _stored(self, record: CapRecord, state: State, detail: str) -> CapRecord:
        stored = await asyncio.to_thread(
            self.store.cap.add, replace(record, state=state.value, detail=detail[:500])
        )
        log.warning(
            "CAP alert %s,%s from %s: %s (%s)", stored.sender, stored.identifier, stored.source, state, detail
        )
        return stored

    def _air(self, record: CapRecord, targets: tuple[str, ...], level: Priority, actor: Actor) -> None:
        """Start airing the alert's bulletin in the background, linked to the alert before it starts."""
        assert record.bulletin_id is not None
        now = self.ctx.clock.now()
        req = BroadcastRequest(
            record.bulletin_id,
            targets,
            level,
            expires_at=record.expires,
            volume=self.ctx.settings.emergency_volume if level is Priority.EMERGENCY else None,
            broadcast_id=new_broadcast_id(now),
            started_by=actor.name,
            approved_by=SYSTEM.name,
        )
        self.store.cap.aired(record.id, req.broadcast_id, now)
        detail = f"CAP {record.identifier} to {', '.join(targets)}, {level.wire}"
        audit.record(
            self.store, actor, "broadcast", now, subject=f"broadcast {req.broadcast_id}", detail=detail
        )
        task = asyncio.get_running_loop().create_task(self._follow(req, record.identifier))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _follow(self, req: BroadcastRequest, identifier: str) -> None:
        try:
            result = await self.controller.broadcast(req)
            log.warning(
                "CAP %s aired as %s: %d of %d played",
                identifier,
                req.broadcast_id,
                result.played,
                result.total,
            )
        except SpeakerctlError:
            log.exception("CAP %s: broadcast %s failed", identifier, req.broadcast_id)

    async def _withdraw(self, alert: Alert, state: State, actor: Actor) -> None:
        """End what the referenced messages started: repeats, what is on air, what waits for approval."""
        for ref in alert.references:
            earlier = await asyncio.to_thread(self.store.cap.find, *_key(ref))
            if earlier is None:
                log.warning("CAP %s references %s, which was never received", alert.key, ref)
                continue
            if earlier.status != alert.status.value:  # a Test Cancel never withdraws an Actual alert
                log.warning(
                    "CAP %s (%s) may not withdraw %s (%s)", alert.key, alert.status, ref, earlier.status
                )
                continue
            why = _("{kind} by {id}").format(kind=alert.msg_type.value, id=alert.key.identifier)
            await asyncio.to_thread(self.store.cap.settle, earlier.id, state.value, why)
            await self._stop_airings(earlier, actor)
            await asyncio.to_thread(self._reject_queued, earlier, why)

    async def _stop_airings(self, record: CapRecord, actor: Actor) -> None:
        for broadcast_id in await asyncio.to_thread(self.store.cap.airings, record.id):
            with contextlib.suppress(SpeakerctlError):  # already ended everywhere: nothing to stop
                stopper = actor if actor.may(Action.STOP) else SYSTEM
                await stops.stop(
                    self.ctx, stopper, broadcast_id, wait_s=STOP_WAIT_S, controller=self.controller
                )

    def _reject_queued(self, record: CapRecord, why: str) -> None:
        now = self.ctx.clock.now()
        for item in self.store.approvals.all(states=[ItemState.PENDING]):
            if item.id in record.items:
                self.store.approvals.decide(
                    item.id, Decision(ItemState.REJECTED, SYSTEM.name, now, reason=why)
                )

    async def tick(self) -> int:
        """Air the emergencies whose repeat is due, end the expired ones; how many aired."""
        now, aired = self.ctx.clock.now(), 0
        for record in await asyncio.to_thread(self.store.cap.in_state, State.AIRING.value):
            if record.expires is not None and record.expires <= now:
                await asyncio.to_thread(self.store.cap.settle, record.id, State.EXPIRED.value, _("expired"))
            elif record.next_air_at is not None and record.next_air_at <= now:
                following = _next(now, self.repeat, record.expires)
                await asyncio.to_thread(
                    self.store.cap.settle, record.id, State.AIRING.value, next_air_at=following
                )
                self._air(record, record.targets, Priority.EMERGENCY, SYSTEM)
                aired += 1
        return aired


def _next(now: datetime, every: timedelta, expires: datetime | None) -> datetime | None:
    """When an emergency airs again: a period on, if that is before it expires."""
    following = now + every
    return following if expires is not None and following < expires else None


def _key(key: AlertKey) -> tuple[str, str, datetime]:
    return key.sender, key.identifier, key.sent


def _record(alert: Alert, info: Info | None, source: str, now: datetime, rules: RuleTable) -> CapRecord:
    return CapRecord(
        sender=alert.key.sender[:255],
        identifier=alert.key.identifier[:255],
        sent=alert.key.sent,
        status=alert.status.value,
        msg_type=alert.msg_type.value,
        received_at=now,
        priority=int(rules.priority(info)) if info else int(Priority.NORMAL),
        state="",
        source=source[:500],
        language=(info.language if info else "")[:35],
        event=(info.event if info else "")[:255],
        headline=(info.headline if info else "")[:500],
        risk_level=rules.risk_level(info) if info else None,
        expires=info.expires if info else None,
    )


def cap_view(
    record: CapRecord, *, duplicate: bool = False, airings: list[str] | None = None
) -> views.CapAlertView:
    """The record as every adapter shows it."""
    return views.CapAlertView(
        id=record.id,
        identifier=record.identifier,
        sender=record.sender,
        sent=record.sent,
        status=record.status,
        msg_type=record.msg_type,
        received_at=record.received_at,
        source=record.source,
        event=record.event,
        headline=record.headline,
        language=record.language,
        priority=Priority(record.priority).wire,
        risk_level=record.risk_level,
        targets=list(record.targets),
        expires=record.expires,
        state=record.state,
        detail=record.detail,
        bulletin=record.bulletin_id,
        next_air_at=record.next_air_at,
        broadcasts=airings or [],
        duplicate=duplicate,
    )


def list_alerts(ctx: AppContext, limit: int = 100) -> list[views.CapAlertView]:
    """The CAP messages received, newest first, each with the broadcasts that aired it."""
    store = ctx.store(sync_inventory=False)
    return [cap_view(r, airings=store.cap.airings(r.id)) for r in store.cap.latest(limit)]


def read_document(path: Path) -> bytes:
    """A CAP file's bytes; AlertRejected if it cannot be read or is larger than any CAP alert."""
    try:
        with path.open("rb") as f:
            data = f.read(MAX_BYTES + 1)
    except OSError as exc:
        raise AlertRejected(
            _("cannot read {path}: {error}").format(path=path, error=exc.strerror or exc)
        ) from exc
    if len(data) > MAX_BYTES:
        raise AlertRejected(
            _("{path} is larger than {limit} bytes: not a CAP alert").format(path=path, limit=MAX_BYTES)
        )
    return data


async def import_file(ctx: AppContext, path: Path, *, actor: Actor) -> views.CapAlertView:
    """Act on a CAP file as if it had arrived from the feed, on `actor`'s authority; an emergency airs
    once through a controller started for it and is followed to its end (`serve` repeats it)."""
    data = read_document(path)
    parse_alert(data)  # refused before any broker is reached
    async with running_controller(ctx) as controller, Desk(ctx, controller).running() as desk:
        view = await desk.receive(data, f"file:{path.name}", actor=actor)
        await desk.idle()
    store = ctx.store(sync_inventory=False)
    return cap_view(store.cap.get(view.id), duplicate=view.duplicate, airings=store.cap.airings(view.id))
