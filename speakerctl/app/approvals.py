"""The approval workflow of Circular 39/2020/TT-BTTTT: submit, queue, approve (placing it), reject.

Where a request goes is decided in app/policy.py. An item waits in the queue of one zone; an approver
of that zone (authorize APPROVE on it) decides, never the user who submitted it. The queue lists
priority items before normal ones, oldest first within each: a priority item from above is placed
ahead of the commune's own normal items. Approving a broadcast item airs it now, or (with a time, or
the time it was submitted for) makes it a one-off schedule the scheduler airs then; approving a schedule
item installs the schedule. Priorities keep the scheduler's and the clusters' rules: a priority item
approved for the same time as the commune's own normal programme cuts it (§9 of docs/protocol.md).
Emergencies never wait (app/policy.py). Every step is in the audit log with its user.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from speakerctl.app import audit, broadcasts, policy, records, schedules, views
from speakerctl.app.access import Action, Actor, authorize
from speakerctl.app.broadcasts import Progress
from speakerctl.app.context import AppContext
from speakerctl.controller.service import BroadcastRequest, Controller, new_broadcast_id
from speakerctl.errors import NotAllowed, NotFound, SpeakerctlError, UsageError
from speakerctl.i18n import _
from speakerctl.protocol import Priority
from speakerctl.scheduler.model import Schedule, new_schedule_id
from speakerctl.scheduler.rules import Kind, Rule
from speakerctl.store import Decision, ItemInfo, ItemKind, ItemState, Store


def submit(
    ctx: AppContext,
    bulletin_id: int,
    targets: Sequence[str],
    priority: str = "normal",
    *,
    actor: Actor,
    at: datetime | None = None,
) -> list[views.ItemView]:
    """Queue a broadcast for approval even if the actor could air it (one item per deciding zone)."""
    level = broadcasts.parse_priority(priority)
    if level is Priority.EMERGENCY:
        raise UsageError(
            _("an emergency is not submitted: it airs at once"),
            hint=_("speakerctl broadcast ID --to ZONE --emergency"),
        )
    store = ctx.store()
    now = ctx.clock.now()
    if at is not None and at <= now:
        raise UsageError(_("--at is in the past"), hint=_("give a time to come, or none for 'when approved'"))
    asked = policy.Request(ItemKind.BROADCAST, bulletin_id, tuple(targets), level, at=at)
    routing = policy.route(store, actor, asked, now, submit=True)
    return [records.item(i) for i in policy.queue_items(store, actor, routing.held)]


def _rank(item: ItemInfo) -> tuple[int, datetime, int]:
    """Queue order: priority before normal, then oldest first."""
    return (-item.priority, item.submitted_at, item.id)


def queue(
    ctx: AppContext,
    *,
    actor: Actor,
    zone_id: str | None = None,
    decided: bool = False,
    store: Store | None = None,
) -> list[views.ItemView]:
    """Pending items (`decided`: every item) of the actor's zones, or of `zone_id` and below, in order.

    `store`: an open one (a running server's), else the context's."""
    store = store or ctx.store()
    tree = policy.zone_tree(store)
    top = zone_id or actor.zone_id
    if top is not None and tree.unknown([top]):
        raise NotFound(_("no zone {zone!r}").format(zone=top), hint=_("see `speakerctl zones list`"))
    authorize(actor, Action.VIEW, [top] if top else [], tree)
    zones = tree.subtree([top]) if top else None
    found = store.approvals.all(zones, None if decided else [ItemState.PENDING])
    return [records.item(i) for i in sorted(found, key=_rank)]


def _decidable(store: Store, item_id: int, actor: Actor) -> ItemInfo:
    """The item, if `actor` may decide it: an approver of its zone, not its author."""
    item = store.approvals.get(item_id)
    authorize(actor, Action.APPROVE, [item.zone_id], policy.zone_tree(store))
    if item.submitted_by == actor.name:
        raise NotAllowed(
            _("{user} submitted item {id} and may not decide it").format(user=actor.name, id=item_id),
            hint=_("another approver of {zone} decides").format(zone=item.zone_id),
        )
    if item.state is not ItemState.PENDING:
        raise UsageError(
            _("item {id} is {state} already").format(id=item_id, state=item.state.value),
            hint=_("see `speakerctl bulletin queue`"),
        )
    return item


async def approve(
    ctx: AppContext,
    item_id: int,
    *,
    actor: Actor,
    at: datetime | None = None,
    timeout_s: float | None = None,
    progress: Progress | None = None,
    controller: Controller | None = None,
) -> views.ApprovedView:
    """Approve an item: air it now, place it at `at` (a one-off schedule), or install its schedule.

    `controller`: a running one (`serve`, the web console) airs it, so one MQTT session is used (two
    controllers with one client id would disconnect each other); else one is started for it.
    """
    store = controller.store if controller else ctx.store()
    item = _decidable(store, item_id, actor)
    now = ctx.clock.now()
    if item.spec.get(policy.FORWARD):
        return _forward(store, item, actor, at, now)
    if item.kind is ItemKind.SCHEDULE:
        if at is not None:
            raise UsageError(_("a schedule item keeps its own times"), hint=_("approve it without --at"))
        made = schedules.from_item_spec(
            item.spec, item.bulletin_id, item.targets, item.priority, actor.name, now
        )
        return _placed(ctx, store, item, actor, made)
    when = at or item.at
    if when is not None and when > now:
        return _placed(ctx, store, item, actor, _one_off(ctx, item, actor, when, now))
    return await _air(ctx, store, item, actor, _Airing(timeout_s, progress, controller))


@dataclass(frozen=True, slots=True)
class _Airing:
    """How an approved item airs: how long to wait for silent clusters, progress, the controller."""

    timeout_s: float | None = None
    progress: Progress | None = None
    controller: Controller | None = None


def _forward(
    store: Store, item: ItemInfo, actor: Actor, at: datetime | None, now: datetime
) -> views.ApprovedView:
    """Approved in its author's zone: on to the queues of the zones below, as its author's (from above)."""
    own, below = policy.split(store, policy.zone_tree(store), item.zone_id, item.targets)
    spec = {k: v for k, v in item.spec.items() if k != policy.FORWARD}
    asked = policy.Request(
        item.kind, item.bulletin_id, item.targets, Priority(item.priority), at or item.at, spec
    )
    decided = _decided(store, item, actor, now, "forwarded")
    try:
        lower = policy.lower_items(asked, item.submitted_by, (item.zone_id, own), below, now)
        made = policy.queue_items(store, actor, lower, action="forward")
    except BaseException:
        store.approvals.reopen(item.id)
        raise
    return views.ApprovedView(
        item=records.item(decided), broadcast=None, schedule=None, forwarded=[i.id for i in made]
    )


def _one_off(ctx: AppContext, item: ItemInfo, actor: Actor, when: datetime, now: datetime) -> Schedule:
    rule = Rule(Kind.AT, at=when, tz=ctx.settings.timezone)
    name = _("item {id} from {user}").format(id=item.id, user=item.submitted_by)
    level = Priority(item.priority)
    return Schedule(
        new_schedule_id(),
        item.bulletin_id,
        item.targets,
        rule,
        level,
        name=name,
        created_at=now,
        approved_by=actor.name,
    )


def _decided(store: Store, item: ItemInfo, actor: Actor, now: datetime, result: str) -> ItemInfo:
    decided = store.approvals.decide(item.id, Decision(ItemState.APPROVED, actor.name, now, result=result))
    detail = _("{result}, submitted by {user}").format(result=result, user=item.submitted_by)
    audit.record(store, actor, "approve", now, subject=f"item {item.id}", detail=detail)
    return decided


def _placed(
    ctx: AppContext, store: Store, item: ItemInfo, actor: Actor, made: Schedule
) -> views.ApprovedView:
    """Decide first (a second approver is refused), then install; put it back if that fails."""
    now = ctx.clock.now()
    schedules.check_schedule(store, made, now)
    decided = _decided(store, item, actor, now, made.id)
    try:
        schedules.add_schedule(store, ctx.book(), made, now)
    except BaseException:
        store.approvals.reopen(item.id)
        raise
    schedules.audited(store, actor, "schedule_add", made, now)
    return views.ApprovedView(item=records.item(decided), broadcast=None, schedule=made.id, forwarded=[])


async def _air(
    ctx: AppContext,
    store: Store,
    item: ItemInfo,
    actor: Actor,
    airing: _Airing,
) -> views.ApprovedView:
    now = ctx.clock.now()
    request = BroadcastRequest(
        item.bulletin_id,
        item.targets,
        Priority(item.priority),
        broadcast_id=new_broadcast_id(now),
        approved_by=actor.name,
        started_by=item.submitted_by,
    )
    decided = _decided(store, item, actor, now, request.broadcast_id)
    try:
        result = await broadcasts.send(
            ctx,
            request,
            actor=actor,
            store=store,
            timeout_s=airing.timeout_s,
            progress=airing.progress,
            controller=airing.controller,
        )
    except SpeakerctlError:
        if not _recorded(store, request.broadcast_id):
            store.approvals.reopen(item.id)  # nothing went out: the item waits again
        raise
    return views.ApprovedView(item=records.item(decided), broadcast=result, schedule=None, forwarded=[])


def _recorded(store: Store, broadcast_id: str) -> bool:
    try:
        store.broadcasts.get(broadcast_id)
    except NotFound:
        return False
    return True


def reject(ctx: AppContext, item_id: int, reason: str, *, actor: Actor) -> views.ItemView:
    """Refuse an item, with the reason its author reads."""
    if not reason.strip():
        raise UsageError(_("a rejection needs a reason"), hint=_("--reason 'why it cannot air'"))
    store = ctx.store()
    item = _decidable(store, item_id, actor)
    now = ctx.clock.now()
    decided = store.approvals.decide(
        item.id, Decision(ItemState.REJECTED, actor.name, now, reason=reason.strip())
    )
    audit.record(store, actor, "reject", now, subject=f"item {item.id}", detail=reason.strip())
    return records.item(decided)


# -- per-zone policy ------------------------------------------------------------------------------------


def parse_roles(text: str) -> frozenset[str]:
    """Roles from "operator,approver" ("none": nobody waits)."""
    roles = frozenset(r.strip().lower() for r in text.split(",") if r.strip()) - {"none"}
    unknown = sorted(roles - policy.POLICY_ROLES)
    if unknown:
        raise UsageError(
            _("a policy names operator and/or approver, not {roles}").format(roles=", ".join(unknown)),
            hint=_("e.g. --approval-for operator,approver, or none"),
        )
    return roles


def set_policy(ctx: AppContext, zone_id: str, roles: Collection[str], *, actor: Actor) -> views.PolicyView:
    """Set which roles wait for approval in `zone_id` and below (administrators of the zone)."""
    store = ctx.store()
    tree = policy.zone_tree(store)
    if tree.unknown([zone_id]):
        raise NotFound(_("no zone {zone!r}").format(zone=zone_id), hint=_("see `speakerctl zones list`"))
    authorize(actor, Action.MANAGE_USERS, [zone_id], tree)
    store.policies.set(zone_id, roles)
    detail = ",".join(sorted(roles)) or "none"
    audit.record(store, actor, "approval_policy", ctx.clock.now(), subject=zone_id, detail=detail)
    return policy_of(ctx, zone_id)


def policy_of(ctx: AppContext, zone_id: str) -> views.PolicyView:
    """The roles that wait for approval in a zone, and the zone that says so (None: the default)."""
    store = ctx.store()
    tree = policy.zone_tree(store)
    if tree.unknown([zone_id]):
        raise NotFound(_("no zone {zone!r}").format(zone=zone_id), hint=_("see `speakerctl zones list`"))
    policies = store.policies.all()
    roles = policy.needs_approval(policies, tree, zone_id)
    return views.PolicyView(
        zone=zone_id, approval_for=sorted(roles), set_on=policy.policy_zone(policies, tree, zone_id)
    )
