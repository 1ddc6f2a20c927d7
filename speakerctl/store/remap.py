"""A remap applied in one transaction: new zones, clusters moved, old zones retired, schedules retargeted."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, update
from sqlmodel import Session, col, select

from speakerctl.errors import StoreError
from speakerctl.fleet import Zone
from speakerctl.store.approvals import retarget_pending
from speakerctl.store.engine import Sessions
from speakerctl.store.models import aware_utc
from speakerctl.store.monitoring import AuditRow
from speakerctl.store.queries import rows_by_id
from speakerctl.store.schedules import schedules
from speakerctl.store.tables import DeviceRow, ZoneRow


@dataclass(frozen=True, slots=True)
class RemapChange:
    """Everything one remap writes; `schedules` maps a schedule id to its new targets."""

    mapping: str
    actor: str
    at: datetime
    added: Sequence[Zone]
    moves: Mapping[str, tuple[str, str]]
    """device id → (old zone, new zone)."""
    retired: Sequence[str]
    schedules: Mapping[str, tuple[str, ...]]
    retarget: Callable[[Sequence[str]], tuple[str, ...]]
    """Rewrites any list of targets: each retired zone becomes the new zones that hold its clusters."""


RemapStep = Callable[[Session, RemapChange], None]
RETARGET_STEPS: list[RemapStep] = []
"""More records to retarget in the remap's transaction (pending approvals always are): each step gets the
session and the change, and rewrites its rows' targets with `change.retarget`; an exception rolls the
remap back."""


class RemapRepository:
    """Applies a remap whole or not at all: a failure anywhere rolls every part back."""

    def __init__(self, sessions: Sessions) -> None:
        self._db = sessions

    def apply(self, change: RemapChange) -> None:
        """Write the change in one transaction, with an audit entry per moved cluster."""
        at = aware_utc(change.at, "at")
        with self._db.session(write=True) as s:
            _add_zones(s, change.added)
            _move_devices(s, change.moves)
            _retire(s, change.retired, at)
            _retarget(s, change.schedules)
            retarget_pending(s, change.retarget)
            for step in RETARGET_STEPS:
                step(s, change)
            s.add_all(
                AuditRow(
                    at=at,
                    actor=change.actor,
                    device_id=device_id,
                    action="remap",
                    outcome="ok",
                    detail=f"{old} → {new} ({change.mapping})",
                )
                for device_id, (old, new) in change.moves.items()
            )


def _add_zones(s: Session, zones: Sequence[Zone]) -> None:
    last = s.exec(select(func.max(ZoneRow.position))).one() or 0
    for i, zone in enumerate(zones, start=last + 1):
        s.add(ZoneRow(id=zone.id, name=zone.name, kind=zone.kind, parent_id=zone.parent, position=i))
    s.flush()


def _move_devices(s: Session, moves: Mapping[str, tuple[str, str]]) -> None:
    rows = rows_by_id(s, DeviceRow, moves, lock=True)
    for device_id, (old, new) in moves.items():
        row = rows.get(device_id)
        if row is None or row.zone_id != old:
            where = "gone" if row is None else f"in {row.zone_id!r}"
            raise StoreError(f"cluster {device_id!r} is {where}, not in {old!r}: the fleet changed meanwhile")
        row.zone_id = new


def _retire(s: Session, zone_ids: Sequence[str], at: datetime) -> None:
    if zone_ids:
        stmt = update(ZoneRow).where(col(ZoneRow.id).in_(list(zone_ids))).values(retired_at=at)
        s.exec(stmt)


def _retarget(s: Session, targets: Mapping[str, tuple[str, ...]]) -> None:
    # A new revision makes a running `serve` reschedule the schedule with its new targets.
    for schedule_id, new in targets.items():
        stmt = (
            update(schedules)
            .where(schedules.c.id == schedule_id)
            .values(targets=json.dumps(list(new)), revision=schedules.c.revision + 1)
        )
        s.exec(stmt)
