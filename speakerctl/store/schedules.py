"""The schedule book's repository: schedules and the record of their runs, and APScheduler's jobs table.

Rules stay the scheduler's: a schedule's rule is held here as the JSON object the scheduler made of it.
Times are fixed-width UTC text, as the book has always stored them: they sort like time on every backend.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    Integer,
    LargeBinary,
    RowMapping,
    String,
    Table,
    Text,
    Unicode,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlmodel import SQLModel

from speakerctl.errors import NotFound
from speakerctl.i18n import _
from speakerctl.store.engine import Sessions

JOBS_TABLE = "speakerctl_apscheduler_jobs"
"""The table of APScheduler's SQLAlchemyJobStore, in the store's schema and migrations."""

schedules = Table(
    "speakerctl_schedules",
    SQLModel.metadata,
    Column("id", String(32), primary_key=True),
    Column("bulletin_id", Integer, nullable=False),
    Column("targets", Text, nullable=False),
    Column("rule", Text, nullable=False),
    Column("priority", Integer, nullable=False),
    Column("on_preempt", String(16), nullable=False),
    Column("window_s", Integer, nullable=False),
    Column("paused", Boolean, nullable=False),
    Column("name", String(200), nullable=False),
    Column("revision", Integer, nullable=False),
    Column("created_at", String(32), nullable=True),
    Column("approved_by", String(64), nullable=False, server_default=""),
    Column("relay_url", String(500), nullable=False, server_default=""),
    Column("relay_for_s", Integer, nullable=False, server_default="0"),
)
runs = Table(
    "speakerctl_schedule_runs",
    SQLModel.metadata,
    Column("schedule_id", String(32), primary_key=True),
    Column("fire_at", String(32), primary_key=True),
    Column("state", String(16), nullable=False),
    Column("broadcast_id", String(64), nullable=False),
    Column("detail", String(200), nullable=False),
    Column("recorded_at", String(32), nullable=False),
)
jobs = Table(  # as APScheduler 3's SQLAlchemyJobStore declares it
    JOBS_TABLE,
    SQLModel.metadata,
    Column("id", Unicode(191), primary_key=True),
    Column("next_run_time", Float(25), index=True),
    Column("job_state", LargeBinary, nullable=False),
)


@dataclass(frozen=True, slots=True)
class ScheduleRecord:
    """A schedule as stored; `rule` is the scheduler's JSON form of its rule."""

    id: str
    bulletin_id: int
    targets: tuple[str, ...]
    rule: Mapping[str, Any]
    priority: int
    on_preempt: str
    window_s: int
    paused: bool
    name: str
    revision: int
    created_at: datetime | None
    approved_by: str = ""
    relay_url: str = ""
    """A relay schedule's station (empty: a bulletin schedule)."""
    relay_for_s: int = 0


@dataclass(frozen=True, slots=True)
class RunRecord:
    """What became of one occurrence of a schedule."""

    schedule_id: str
    fire_at: datetime
    state: str
    broadcast_id: str
    detail: str
    recorded_at: datetime


class ScheduleRepository:
    """Schedules and runs; a removed schedule's runs stay as history."""

    def __init__(self, sessions: Sessions) -> None:
        self._db = sessions

    def add(self, schedule: ScheduleRecord) -> None:
        """Insert a schedule."""
        with self._db.begin() as c:
            c.execute(insert(schedules).values(**_row(schedule)))

    def save(self, schedule: ScheduleRecord) -> None:
        """Replace a schedule's fields."""
        with self._db.begin() as c:
            c.execute(update(schedules).where(schedules.c.id == schedule.id).values(**_row(schedule)))

    def get(self, schedule_id: str) -> ScheduleRecord:
        """One schedule, or NotFound."""
        with self._db.begin(write=False) as c:
            row = c.execute(select(schedules).where(schedules.c.id == schedule_id)).mappings().first()
        if row is None:
            raise NotFound(
                _("no schedule {id!r}").format(id=schedule_id), hint=_("see `speakerctl schedule list`")
            )
        return _schedule(row)

    def all(self) -> list[ScheduleRecord]:
        """Every schedule, by id."""
        with self._db.begin(write=False) as c:
            rows = c.execute(select(schedules).order_by(schedules.c.id)).mappings().all()
        return [_schedule(r) for r in rows]

    def remove(self, schedule_id: str) -> None:
        """Delete a schedule, or NotFound."""
        with self._db.begin() as c:
            if c.execute(delete(schedules).where(schedules.c.id == schedule_id)).rowcount == 0:
                raise NotFound(
                    _("no schedule {id!r}").format(id=schedule_id), hint=_("see `speakerctl schedule list`")
                )

    def record_run(self, run: RunRecord) -> None:
        """Insert or replace the record of one occurrence."""
        values = {
            "schedule_id": run.schedule_id,
            "fire_at": _ts(run.fire_at),
            "state": run.state,
            "broadcast_id": run.broadcast_id,
            "detail": run.detail[:200],
            "recorded_at": _ts(run.recorded_at),
        }
        key = (runs.c.schedule_id == run.schedule_id) & (runs.c.fire_at == values["fire_at"])
        with self._db.begin() as c:
            if c.execute(update(runs).where(key).values(**values)).rowcount == 0:
                c.execute(insert(runs).values(**values))

    def runs(self, schedule_id: str | None = None) -> list[RunRecord]:
        """Recorded occurrences, oldest first."""
        query = select(runs).order_by(runs.c.fire_at)
        if schedule_id is not None:
            query = query.where(runs.c.schedule_id == schedule_id)
        with self._db.begin(write=False) as c:
            return [_run(r) for r in c.execute(query).mappings().all()]

    def run(self, schedule_id: str, fire_at: datetime) -> RunRecord | None:
        """The record of one occurrence, if any."""
        key = (runs.c.schedule_id == schedule_id) & (runs.c.fire_at == _ts(fire_at))
        with self._db.begin(write=False) as c:
            row = c.execute(select(runs).where(key)).mappings().first()
        return None if row is None else _run(row)

    def last_run_at(
        self, schedule_id: str, before: datetime, *, excluding: Collection[str]
    ) -> datetime | None:
        """The latest occurrence at or before `before` whose state is not in `excluding`."""
        query = select(func.max(runs.c.fire_at)).where(
            (runs.c.schedule_id == schedule_id)
            & (runs.c.fire_at <= _ts(before))
            & runs.c.state.not_in(list(excluding))
        )
        with self._db.begin(write=False) as c:
            value = c.execute(query).scalar()
        return None if value is None else _parse_ts(value)


def _ts(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_ts(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def _row(s: ScheduleRecord) -> dict[str, Any]:
    return {
        "id": s.id,
        "bulletin_id": s.bulletin_id,
        "targets": json.dumps(list(s.targets)),
        "rule": json.dumps(dict(s.rule)),
        "priority": s.priority,
        "on_preempt": s.on_preempt,
        "window_s": s.window_s,
        "paused": s.paused,
        "name": s.name,
        "revision": s.revision,
        "created_at": _ts(s.created_at) if s.created_at else None,
        "approved_by": s.approved_by,
        "relay_url": s.relay_url,
        "relay_for_s": s.relay_for_s,
    }


def _schedule(r: RowMapping) -> ScheduleRecord:
    return ScheduleRecord(
        id=r["id"],
        bulletin_id=r["bulletin_id"],
        targets=tuple(json.loads(r["targets"])),
        rule=json.loads(r["rule"]),
        priority=r["priority"],
        on_preempt=r["on_preempt"],
        window_s=r["window_s"],
        paused=bool(r["paused"]),
        name=r["name"],
        revision=r["revision"],
        created_at=_parse_ts(r["created_at"]) if r["created_at"] else None,
        approved_by=r["approved_by"],
        relay_url=r["relay_url"],
        relay_for_s=r["relay_for_s"],
    )


def _run(r: RowMapping) -> RunRecord:
    return RunRecord(
        r["schedule_id"],
        _parse_ts(r["fire_at"]),
        r["state"],
        r["broadcast_id"],
        r["detail"],
        _parse_ts(r["recorded_at"]),
    )
