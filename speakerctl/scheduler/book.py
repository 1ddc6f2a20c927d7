"""The schedule book: schedules and their runs in the project's database, and APScheduler's job store.

This is the documented exception to "only `store` imports SQLAlchemy" (docs/architecture.md):
APScheduler's SQLAlchemyJobStore needs an engine anyway, so the scheduler keeps its own two small
tables (SQLAlchemy Core, no sqlmodel) beside it in the same database, and the shared store stays
untouched.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from speakerctl.errors import NotFound, StoreError
from speakerctl.protocol import PreemptPolicy, Priority
from speakerctl.scheduler.model import Run, RunState, Schedule
from speakerctl.scheduler.rules import Rule

JOBS_TABLE = "speakerctl_apscheduler_jobs"
_meta = MetaData()
schedules = Table(
    "speakerctl_schedules",
    _meta,
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
)
runs = Table(
    "speakerctl_schedule_runs",
    _meta,
    Column("schedule_id", String(32), primary_key=True),
    Column("fire_at", String(32), primary_key=True),
    Column("state", String(16), nullable=False),
    Column("broadcast_id", String(64), nullable=False),
    Column("detail", String(200), nullable=False),
    Column("recorded_at", String(32), nullable=False),
)


class ScheduleBook:
    """Schedules and runs; thread-safe (an engine, a connection per call)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = _engine(url)
        try:
            _meta.create_all(self.engine)
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot create the schedule tables: {exc}") from exc

    def close(self) -> None:
        """Release the connections."""
        self.engine.dispose()

    def job_store(self) -> SQLAlchemyJobStore:
        """APScheduler's persistent job store, on the same database."""
        return SQLAlchemyJobStore(engine=self.engine, tablename=JOBS_TABLE)

    @contextmanager
    def _conn(self) -> Iterator[Connection]:
        try:
            with self.engine.begin() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise StoreError(f"schedule book: {exc}") from exc

    def add(self, schedule: Schedule) -> Schedule:
        """Insert a schedule."""
        with self._conn() as c:
            c.execute(insert(schedules).values(**_row(schedule)))
        return schedule

    def save(self, schedule: Schedule) -> Schedule:
        """Replace a schedule's fields."""
        with self._conn() as c:
            c.execute(update(schedules).where(schedules.c.id == schedule.id).values(**_row(schedule)))
        return schedule

    def get(self, schedule_id: str) -> Schedule:
        """One schedule, or NotFound."""
        with self._conn() as c:
            row = c.execute(select(schedules).where(schedules.c.id == schedule_id)).mappings().first()
        if row is None:
            raise NotFound(f"no schedule {schedule_id!r}", hint="see `speakerctl schedule list`")
        return _schedule(row)

    def all(self) -> list[Schedule]:
        """Every schedule, by id."""
        with self._conn() as c:
            rows = c.execute(select(schedules).order_by(schedules.c.id)).mappings().all()
        return [_schedule(r) for r in rows]

    def remove(self, schedule_id: str) -> None:
        """Delete a schedule (its runs stay as history)."""
        self.get(schedule_id)
        with self._conn() as c:
            c.execute(delete(schedules).where(schedules.c.id == schedule_id))

    def record(self, run: Run) -> None:
        """Insert or replace the record of one occurrence."""
        values = {
            "schedule_id": run.schedule_id,
            "fire_at": _ts(run.fire_at),
            "state": run.state.value,
            "broadcast_id": run.broadcast_id,
            "detail": run.detail[:200],
            "recorded_at": _ts(run.recorded_at or datetime.now(UTC)),
        }
        key = (runs.c.schedule_id == run.schedule_id) & (runs.c.fire_at == values["fire_at"])
        with self._conn() as c:
            if c.execute(update(runs).where(key).values(**values)).rowcount == 0:
                c.execute(insert(runs).values(**values))

    def runs(self, schedule_id: str | None = None) -> list[Run]:
        """Recorded occurrences, oldest first."""
        query = select(runs).order_by(runs.c.fire_at)
        if schedule_id is not None:
            query = query.where(runs.c.schedule_id == schedule_id)
        with self._conn() as c:
            return [_run(r) for r in c.execute(query).mappings().all()]

    def run(self, schedule_id: str, fire_at: datetime) -> Run | None:
        """The record of one occurrence, if any."""
        key = (runs.c.schedule_id == schedule_id) & (runs.c.fire_at == _ts(fire_at))
        with self._conn() as c:
            row = c.execute(select(runs).where(key)).mappings().first()
        return None if row is None else _run(row)

    def last_handled(self, schedule_id: str, before: datetime) -> datetime | None:
        """The latest occurrence at or before `before` that was dealt with (pushed ones are still to air)."""
        query = select(func.max(runs.c.fire_at)).where(
            (runs.c.schedule_id == schedule_id)
            & (runs.c.fire_at <= _ts(before))
            & (runs.c.state != RunState.PUSHED.value)
        )
        with self._conn() as c:
            value = c.execute(query).scalar()
        return None if value is None else _parse_ts(value)


def _engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
        if parsed.get_backend_name() != "sqlite":
            return create_engine(parsed, pool_pre_ping=True)
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        return create_engine(parsed, connect_args={"timeout": 30})
    except (ArgumentError, ImportError, OSError, ValueError) as exc:
        raise StoreError(f"cannot use database URL for schedules: {exc}") from exc


def _ts(at: datetime) -> str:
    # Fixed-width UTC text: sorts like time on every backend, and is exact.
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_ts(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def _row(s: Schedule) -> dict[str, Any]:
    return {
        "id": s.id,
        "bulletin_id": s.bulletin_id,
        "targets": json.dumps(list(s.targets)),
        "rule": json.dumps(s.rule.to_dict()),
        "priority": int(s.priority),
        "on_preempt": s.on_preempt.value,
        "window_s": s.window_s,
        "paused": s.paused,
        "name": s.name,
        "revision": s.revision,
        "created_at": _ts(s.created_at) if s.created_at else None,
    }


def _schedule(r: Any) -> Schedule:
    return Schedule(
        id=r["id"],
        bulletin_id=r["bulletin_id"],
        targets=tuple(json.loads(r["targets"])),
        rule=Rule.from_dict(json.loads(r["rule"])),
        priority=Priority(r["priority"]),
        on_preempt=PreemptPolicy(r["on_preempt"]),
        window_s=r["window_s"],
        paused=bool(r["paused"]),
        name=r["name"],
        revision=r["revision"],
        created_at=_parse_ts(r["created_at"]) if r["created_at"] else None,
    )


def _run(r: Any) -> Run:
    return Run(
        r["schedule_id"],
        _parse_ts(r["fire_at"]),
        RunState(r["state"]),
        r["broadcast_id"],
        r["detail"],
        _parse_ts(r["recorded_at"]),
    )
