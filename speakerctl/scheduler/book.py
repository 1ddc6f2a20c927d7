"""The schedule book: the scheduler's schedules and runs over the store's schedule repository.

The tables, and APScheduler's job table, live in the store's schema and migrations; this module only
maps the scheduler's values (a `Rule`, `RunState`) to the store's plain records and back.
"""

from __future__ import annotations

from datetime import datetime

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore

from speakerctl.protocol import PreemptPolicy, Priority
from speakerctl.scheduler.model import Relay, Run, RunState, Schedule
from speakerctl.scheduler.rules import Rule
from speakerctl.store import JOBS_TABLE, Claim, Fence, RunRecord, ScheduleRecord, Store


class ScheduleBook:
    """Schedules and runs in `store`; thread-safe like the store."""

    def __init__(self, store: Store, *, owned: bool = False) -> None:
        self.store = store
        self._owned = owned

    @classmethod
    def open(cls, url: str) -> ScheduleBook:
        """A book on its own store (closed with the book)."""
        return cls(Store.open(url), owned=True)

    def close(self) -> None:
        """Close the store if the book opened it."""
        if self._owned:
            self.store.close()

    def job_store(self) -> SQLAlchemyJobStore:
        """APScheduler's persistent job store, on the store's engine and schema."""
        return SQLAlchemyJobStore(engine=self.store.engine, tablename=JOBS_TABLE)

    def add(self, schedule: Schedule) -> Schedule:
        """Insert a schedule."""
        self.store.schedules.add(_record(schedule))
        return schedule

    def save(self, schedule: Schedule) -> Schedule:
        """Replace a schedule's fields."""
        self.store.schedules.save(_record(schedule))
        return schedule

    def get(self, schedule_id: str) -> Schedule:
        """One schedule, or NotFound."""
        return _schedule(self.store.schedules.get(schedule_id))

    def all(self) -> list[Schedule]:
        """Every schedule, by id."""
        return [_schedule(r) for r in self.store.schedules.all()]

    def remove(self, schedule_id: str) -> None:
        """Delete a schedule (its runs stay as history)."""
        self.store.schedules.remove(schedule_id)

    def record(self, run: Run) -> None:
        """Insert or replace the record of one occurrence."""
        # The runner stamps every run with its clock; the book never reads the time itself.
        assert run.recorded_at is not None, "a run is recorded with the time it was decided"
        recorded_at = run.recorded_at
        self.store.schedules.record_run(
            RunRecord(
                run.schedule_id, run.fire_at, run.state.value, run.broadcast_id, run.detail, recorded_at
            )
        )

    def claim(self, schedule_id: str, fire_at: datetime, broadcast_id: str, fence: Fence | None) -> str:
        """Claim an occurrence for `broadcast_id`; the broadcast that holds the claim (maybe another)."""
        return self.store.broadcasts.claim(Claim(schedule_id, fire_at), broadcast_id, fence)

    def release(self, schedule_id: str, fire_at: datetime, fence: Fence | None) -> None:
        """Give up the claim of an occurrence cancelled before it aired (it may be sent again)."""
        self.store.broadcasts.release(Claim(schedule_id, fire_at), fence)

    def runs(self, schedule_id: str | None = None) -> list[Run]:
        """Recorded occurrences, oldest first."""
        return [_run(r) for r in self.store.schedules.runs(schedule_id)]

    def run(self, schedule_id: str, fire_at: datetime) -> Run | None:
        """The record of one occurrence, if any."""
        found = self.store.schedules.run(schedule_id, fire_at)
        return None if found is None else _run(found)

    def last_handled(self, schedule_id: str, before: datetime) -> datetime | None:
        """The latest occurrence at or before `before` that was dealt with (pushed ones are still to air)."""
        return self.store.schedules.last_run_at(schedule_id, before, excluding=[RunState.PUSHED.value])


def _record(s: Schedule) -> ScheduleRecord:
    return ScheduleRecord(
        id=s.id,
        bulletin_id=s.bulletin_id,
        targets=s.targets,
        rule=s.rule.to_dict(),
        priority=int(s.priority),
        on_preempt=s.on_preempt.value,
        window_s=s.window_s,
        paused=s.paused,
        name=s.name,
        revision=s.revision,
        created_at=s.created_at,
        approved_by=s.approved_by,
        relay_url=s.relay.url if s.relay else "",
        relay_for_s=s.relay.duration_s if s.relay else 0,
    )


def _schedule(r: ScheduleRecord) -> Schedule:
    return Schedule(
        id=r.id,
        bulletin_id=r.bulletin_id,
        targets=r.targets,
        rule=Rule.from_dict(dict(r.rule)),
        priority=Priority(r.priority),
        on_preempt=PreemptPolicy(r.on_preempt),
        window_s=r.window_s,
        paused=r.paused,
        name=r.name,
        revision=r.revision,
        created_at=r.created_at,
        approved_by=r.approved_by,
        relay=Relay(r.relay_url, r.relay_for_s) if r.relay_url else None,
    )


def _run(r: RunRecord) -> Run:
    return Run(r.schedule_id, r.fire_at, RunState(r.state), r.broadcast_id, r.detail, r.recorded_at)
