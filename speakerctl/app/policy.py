"""Where an actor's broadcast or schedule goes: on air at once, or into approval queues (Circular 39).

The one owner of the routing rule (`route`) and of per-zone approval policy: a zone's policy names the
roles that wait for approval there and below, until a lower zone sets its own; without any, operators
wait. The zone helpers here are what every service hands authorize(): the store's zone tree and the
zones a list of targets names.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from speakerctl.app import audit
from speakerctl.app.access import Action, Actor, Role, authorize
from speakerctl.errors import AwaitsApproval
from speakerctl.fleet.zonetree import ZoneTree
from speakerctl.i18n import _
from speakerctl.protocol import Priority
from speakerctl.store import ItemInfo, ItemKind, ItemState, NewItem, Store


def zone_tree(store: Store) -> ZoneTree:
    """The zone tree the store holds."""
    return ZoneTree(store.zones.all())


def zones_of(store: Store, targets: Collection[str]) -> list[str]:
    """The zone of each target: a zone id as itself, a device id as its zone (NotFound if neither)."""
    tree = zone_tree(store)
    devices = {d.id: d.zone_id for d in store.devices.all()} if set(targets) - tree.zones.keys() else {}
    return [t if t in tree.zones else devices.get(t) or store.devices.get(t).zone_id for t in targets]


DEFAULT_NEEDS_APPROVAL = frozenset({Role.OPERATOR.value})
"""Without a policy on a zone or its ancestors: operators need approval, approvers and administrators not."""
POLICY_ROLES = frozenset({Role.OPERATOR.value, Role.APPROVER.value})
"""The roles a policy may hold for approval (an administrator's own requests never wait)."""


def policy_zone(policies: Mapping[str, frozenset[str]], tree: ZoneTree, zone_id: str) -> str | None:
    """The zone whose policy holds in `zone_id`: itself or its nearest ancestor with one (None: default)."""
    return next((z for z in reversed(tree.ancestors(zone_id)) if z in policies), None)


def needs_approval(policies: Mapping[str, frozenset[str]], tree: ZoneTree, zone_id: str) -> frozenset[str]:
    """Roles needing approval in `zone_id`: its own policy, else its nearest ancestor's, else the default."""
    source = policy_zone(policies, tree, zone_id)
    return DEFAULT_NEEDS_APPROVAL if source is None else policies[source]


@dataclass(frozen=True, slots=True)
class Request:
    """What an actor asks to air: a broadcast (now or `at`) or a schedule (`spec`)."""

    kind: ItemKind
    bulletin_id: int
    targets: tuple[str, ...]
    priority: Priority
    at: datetime | None = None
    spec: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Routing:
    """Where a request goes: on air as asked (`held` empty), or into approval queues."""

    held: tuple[NewItem, ...] = ()
    notes: tuple[NewItem, ...] = ()
    """An emergency from above airs at once; these record it in each lower zone's queue as aired."""

    @property
    def direct(self) -> bool:
        """Whether the request acts now."""
        return not self.held


RELAY_URL = "relay_url"
"""Set in a schedule's spec when it relays a station (its bulletin_id is 0)."""
FORWARD = "forward"
"""Set in an item's spec when, once approved in its author's zone, it goes on to the zones below."""


def route(store: Store, actor: Actor, request: Request, now: datetime, *, submit: bool = False) -> Routing:
    """Authorize `request` and decide where it goes (Circular 39); `submit`: queue it even if it could air.

    - An emergency airs at once, everywhere it is sent; lower zones get an `aired` note in their queue.
    - When the policy of the author's zone names their role, it waits for an approver of that zone first;
      approved, it goes on as if its author needed no approval (`approvals.approve`, FORWARD).
    - A user scoped to a zone who targets zones below it (a province user, communes) does not air there:
      each lower zone holding clusters gets an item of its own, for its approvers to place (`from_above`).
    """
    tree = zone_tree(store)
    action = Action.SCHEDULE if request.kind is ItemKind.SCHEDULE else Action.BROADCAST
    authorize(actor, action, zones_of(store, request.targets), tree)
    if not request.spec.get(RELAY_URL):  # a relay schedule airs a station, not a bulletin
        store.bulletins.get(request.bulletin_id)
    own, below = split(store, tree, actor.zone_id, request.targets)
    if request.priority is Priority.EMERGENCY:
        notes = (_item(request, actor.name, z, t, now, ItemState.AIRED) for z, t in below.items())
        return Routing(notes=tuple(notes))
    home = actor.zone_id or tree.roots()[0].id
    if actor.role.value in needs_approval(store.policies.all(), tree, home):
        spec = {**request.spec, FORWARD: True} if below else dict(request.spec)
        held = _item(replace(request, spec=spec), actor.name, home, request.targets, now, from_above=False)
        return Routing(held=(held,))
    if not (below or submit):
        return Routing()
    return Routing(held=tuple(lower_items(request, actor.name, (home, own), below, now)))


def lower_items(
    request: Request,
    author: str,
    own: tuple[str, Sequence[str]],
    below: Mapping[str, tuple[str, ...]],
    now: datetime,
) -> list[NewItem]:
    """An item for the author's own zone (`own`: that zone and its targets, if any), one per lower zone."""
    home, targets = own
    items = [_item(request, author, z, t, now) for z, t in below.items()]
    if targets:
        items.insert(0, _item(request, author, home, tuple(targets), now, from_above=False))
    return items


def split(
    store: Store, tree: ZoneTree, zone_id: str | None, targets: Sequence[str]
) -> tuple[list[str], dict[str, tuple[str, ...]]]:
    """Targets in `zone_id` itself, and those of each lower zone holding clusters (None: all its own)."""
    if zone_id is None:
        return list(targets), {}
    holding = {d.zone_id for d in store.devices.all()}
    own: list[str] = []
    below: dict[str, list[str]] = {}
    for target in targets:
        if target in tree.zones:
            for zone in sorted(tree.subtree([target]) & holding, key=tree.order.index):
                (own if zone == zone_id else below.setdefault(zone, [])).append(zone)
        else:
            zone = store.devices.get(target).zone_id
            (own if zone == zone_id else below.setdefault(zone, [])).append(target)
    return list(dict.fromkeys(own)), {z: tuple(dict.fromkeys(t)) for z, t in below.items()}


def _item(
    request: Request,
    author: str,
    zone_id: str,
    targets: tuple[str, ...],
    now: datetime,
    state: ItemState = ItemState.PENDING,
    *,
    from_above: bool = True,
) -> NewItem:
    return NewItem(
        request.kind,
        request.bulletin_id,
        zone_id,
        targets,
        int(request.priority),
        author,
        now,
        from_above=from_above,
        at=request.at,
        spec=dict(request.spec),
        state=state,
    )


def queue_items(
    store: Store, actor: Actor, items: Sequence[NewItem], *, action: str = "submit"
) -> list[ItemInfo]:
    """Store what a routing holds (or notes), each audited as `action` (or `aired`) with the actor."""
    stored = store.approvals.add(items)
    for item in stored:
        action = action if item.state is ItemState.PENDING else "aired_from_above"
        detail = f"bulletin {item.bulletin_id} to {', '.join(item.targets)}, priority {item.priority}"
        audit.record(store, actor, action, item.submitted_at, subject=f"item {item.id}", detail=detail)
    return stored


def awaiting(items: Sequence[ItemInfo]) -> AwaitsApproval:
    """The notice that a request waits, naming its items and who decides."""
    ids = ", ".join(str(i.id) for i in items)
    zones = ", ".join(dict.fromkeys(i.zone_id for i in items))
    return AwaitsApproval(
        _("submitted for approval as item {ids} (zone {zones})").format(ids=ids, zones=zones),
        tuple(i.id for i in items),
        hint=_("an approver of the zone decides: speakerctl bulletin queue, bulletin approve ITEM"),
    )
