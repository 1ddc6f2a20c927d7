"""The approval queue (Circular 39) and each zone's approval policy."""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Text
from sqlmodel import Field, Session, SQLModel, col, select

from speakerctl.errors import UsageError
from speakerctl.store.engine import Sessions
from speakerctl.store.models import aware_utc
from speakerctl.store.queries import get_row
from speakerctl.store.tables import UTCDateTime, ZoneRow


class ItemState(StrEnum):
    """Where an approval item stands."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    AIRED = "aired"
    """An emergency from above: aired at once, recorded in the commune's queue without a decision."""


class ItemKind(StrEnum):
    """What is waiting: a broadcast (now or at a time) or a schedule."""

    BROADCAST = "broadcast"
    SCHEDULE = "schedule"


@dataclass(frozen=True, slots=True)
class NewItem:
    """An item to queue: what, where, for whom to decide."""

    kind: ItemKind
    bulletin_id: int
    zone_id: str
    """The zone whose approvers decide."""
    targets: tuple[str, ...]
    priority: int
    submitted_by: str
    submitted_at: datetime
    from_above: bool = False
    """Submitted by a higher level (a province user for a commune): the commune places it."""
    at: datetime | None = None
    """When the submitter would like it aired (None: when approved)."""
    spec: dict[str, object] = field(default_factory=dict)
    """A schedule item's rule and options, as the scheduler writes them."""
    state: ItemState = ItemState.PENDING
    result: str = ""
    """For an item recorded as aired: its broadcast id."""


@dataclass(frozen=True, slots=True)
class ItemInfo:
    """An approval item as stored."""

    id: int
    kind: ItemKind
    bulletin_id: int
    zone_id: str
    targets: tuple[str, ...]
    priority: int
    submitted_by: str
    submitted_at: datetime
    from_above: bool
    at: datetime | None
    spec: dict[str, object]
    state: ItemState
    decided_by: str
    decided_at: datetime | None
    reason: str
    result: str
    """The broadcast or schedule id the approval made."""


class ApprovalRow(SQLModel, table=True):
    """A broadcast or schedule waiting for (or past) an approver's decision."""

    __tablename__ = "approval_items"

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=16)
    bulletin_id: int = Field(foreign_key="bulletins.id", index=True)
    zone_id: str = Field(max_length=128, index=True)
    targets: str = Field(sa_type=Text)
    priority: int
    submitted_by: str = Field(max_length=64)
    submitted_at: datetime = Field(sa_type=UTCDateTime)
    from_above: bool = False
    at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    spec: str = Field(default="{}", sa_type=Text)
    state: str = Field(default=ItemState.PENDING.value, max_length=16, index=True)
    decided_by: str = Field(default="", max_length=64)
    decided_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    reason: str = Field(default="", sa_type=Text)
    result: str = Field(default="", max_length=64)

    def info(self) -> ItemInfo:
        """Public value."""
        assert self.id is not None
        return ItemInfo(
            self.id,
            ItemKind(self.kind),
            self.bulletin_id,
            self.zone_id,
            tuple(json.loads(self.targets)),
            self.priority,
            self.submitted_by,
            self.submitted_at,
            self.from_above,
            self.at,
            json.loads(self.spec),
            ItemState(self.state),
            self.decided_by,
            self.decided_at,
            self.reason,
            self.result,
        )


class PolicyRow(SQLModel, table=True):
    """Which roles need approval in a zone and below (until a lower zone says otherwise)."""

    __tablename__ = "approval_policies"

    zone_id: str = Field(primary_key=True, max_length=128)
    roles: str = Field(default="", max_length=200)
    """Comma-separated roles whose broadcasts and schedules wait for an approver."""


def _row(item: NewItem) -> ApprovalRow:
    return ApprovalRow(
        kind=item.kind.value,
        bulletin_id=item.bulletin_id,
        zone_id=item.zone_id,
        targets=json.dumps(list(item.targets)),
        priority=item.priority,
        submitted_by=item.submitted_by,
        submitted_at=aware_utc(item.submitted_at, "submitted_at"),
        from_above=item.from_above,
        at=aware_utc(item.at, "at") if item.at else None,
        spec=json.dumps(item.spec),
        state=item.state.value,
        result=item.result,
        decided_by="" if item.state is ItemState.PENDING else item.submitted_by,
        decided_at=None if item.state is ItemState.PENDING else aware_utc(item.submitted_at, "submitted_at"),
    )


@dataclass(frozen=True, slots=True)
class Decision:
    """An approver's decision on a pending item."""

    state: ItemState
    by: str
    at: datetime
    reason: str = ""
    result: str = ""


class ApprovalRepository:
    """Approval items: added together, decided once."""

    def __init__(self, sessions: Sessions) -> None:
        self._db = sessions

    def add(self, items: Sequence[NewItem]) -> list[ItemInfo]:
        """Queue items in one transaction (the bulletin must exist)."""
        rows = [_row(i) for i in items]
        with self._db.session(write=True) as s:
            for row in rows:
                s.add(row)
            s.flush()
            return [r.info() for r in rows]

    def get(self, item_id: int) -> ItemInfo:
        """One item, or NotFound."""
        with self._db.session() as s:
            return get_row(s, ApprovalRow, item_id, "approval item").info()

    def all(
        self, zone_ids: Collection[str] | None = None, states: Collection[ItemState] | None = None
    ) -> list[ItemInfo]:
        """Items of these zones and states, oldest first."""
        query = select(ApprovalRow).order_by(col(ApprovalRow.submitted_at), col(ApprovalRow.id))
        if zone_ids is not None:
            query = query.where(col(ApprovalRow.zone_id).in_(list(zone_ids)))
        if states is not None:
            query = query.where(col(ApprovalRow.state).in_([s.value for s in states]))
        with self._db.session() as s:
            return [r.info() for r in s.exec(query)]

    def decide(self, item_id: int, decision: Decision) -> ItemInfo:
        """Record a decision on a pending item; UsageError if it was decided already."""
        with self._db.session(write=True) as s:
            row = get_row(s, ApprovalRow, item_id, "approval item", lock=True)
            if row.state != ItemState.PENDING.value:
                raise UsageError(
                    f"item {item_id} is {row.state} already (by {row.decided_by or row.submitted_by})",
                    hint="see `speakerctl bulletin queue`",
                )
            row.state, row.decided_by = decision.state.value, decision.by
            row.decided_at, row.reason = aware_utc(decision.at, "at"), decision.reason
            row.result = decision.result
            return row.info()

    def reopen(self, item_id: int) -> ItemInfo:
        """Put an approved item back in the queue (its airing failed before anything was recorded)."""
        with self._db.session(write=True) as s:
            row = get_row(s, ApprovalRow, item_id, "approval item", lock=True)
            row.state, row.decided_by, row.decided_at, row.result = ItemState.PENDING.value, "", None, ""
            return row.info()


class PolicyRepository:
    """Per-zone approval policies."""

    def __init__(self, sessions: Sessions) -> None:
        self._db = sessions

    def set(self, zone_id: str, roles: Collection[str]) -> None:
        """Set which roles need approval in `zone_id` and below."""
        with self._db.session(write=True) as s:
            row = s.get(PolicyRow, zone_id) or PolicyRow(zone_id=zone_id)
            row.roles = ",".join(sorted(roles))
            s.add(row)

    def all(self) -> dict[str, frozenset[str]]:
        """Every zone's own policy (roles needing approval), by zone id."""
        with self._db.session() as s:
            return {r.zone_id: frozenset(filter(None, r.roles.split(","))) for r in s.exec(select(PolicyRow))}


def retarget_pending(s: Session, retarget: Callable[[Sequence[str]], tuple[str, ...]]) -> int:
    """After a remap, point pending items at the new zones (targets and deciding zone); how many changed.

    A retired commune has one successor, whose approvers decide; a retired district has several, so its
    items go to the nearest zone above them all (after 2025, the province or city).
    """
    changed = 0
    for row in s.exec(select(ApprovalRow).where(col(ApprovalRow.state) == ItemState.PENDING.value)).all():
        old = json.loads(row.targets)
        targets, deciders = retarget(old), retarget([row.zone_id])
        zone = deciders[0] if len(deciders) == 1 else _common_ancestor(s, deciders) or row.zone_id
        if list(targets) != old or zone != row.zone_id:
            row.targets, row.zone_id = json.dumps(list(targets)), zone
            s.add(row)
            changed += 1
    return changed


def _common_ancestor(s: Session, zone_ids: Sequence[str]) -> str | None:
    chains = [_chain(s, z) for z in zone_ids]
    shared = set(chains[0]).intersection(*chains[1:]) if chains else set()
    return next((z for z in chains[0] if z in shared), None)


def _chain(s: Session, zone_id: str) -> list[str]:
    """The zone and its ancestors, nearest first."""
    chain: list[str] = []
    current: str | None = zone_id
    while current is not None and current not in chain:
        chain.append(current)
        row = s.get(ZoneRow, current)
        current = row.parent_id if row is not None else None
    return chain
