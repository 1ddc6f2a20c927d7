"""The schedule book over the store's schedule repository, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta

import pytest

from speakerctl.errors import NotFound
from speakerctl.protocol import PreemptPolicy, Priority
from speakerctl.scheduler.book import ScheduleBook
from speakerctl.scheduler.model import Run, RunState, Schedule
from speakerctl.scheduler.rules import Kind, Rule

T0 = datetime(2027, 1, 3, 22, 0, tzinfo=UTC)
DAILY = Rule(Kind.DAILY, times=(time(5),))


@pytest.fixture
def book(db_url: str) -> Iterator[ScheduleBook]:
    opened = ScheduleBook.open(db_url)
    yield opened
    opened.close()


def _schedule(**kw: object) -> Schedule:
    options = {"priority": Priority.EMERGENCY, "on_preempt": PreemptPolicy.RESUME, "created_at": T0} | kw
    return Schedule("sch-a", 7, ("st", "d1"), DAILY, name="Sáng", **options)  # type: ignore[arg-type]


def test_schedules_round_trip_save_and_remove(book: ScheduleBook) -> None:
    schedule = book.add(_schedule())
    assert book.get("sch-a") == schedule
    book.save(schedule.bumped(paused=True))
    assert book.all() == [schedule.bumped(paused=True)]
    book.remove("sch-a")
    assert book.all() == []
    with pytest.raises(NotFound, match="sch-a"):
        book.remove("sch-a")
    with pytest.raises(NotFound, match="sch-a"):
        book.get("sch-a")


def test_runs_are_replaced_per_occurrence_and_last_handled_skips_pushed(book: ScheduleBook) -> None:
    book.add(_schedule())
    first, second = T0, T0 + timedelta(days=1)
    book.record(Run("sch-a", first, RunState.PUSHED, "bc-1", "to st", T0))
    book.record(Run("sch-a", second, RunState.PUSHED, "bc-2", "to st", T0))
    assert book.last_handled("sch-a", second) is None
    book.record(Run("sch-a", first, RunState.AIRED, "bc-1", "aired", T0))
    assert [r.state for r in book.runs("sch-a")] == [RunState.AIRED, RunState.PUSHED]
    assert book.run("sch-a", first) == Run("sch-a", first, RunState.AIRED, "bc-1", "aired", T0)
    assert book.run("sch-a", T0 - timedelta(days=1)) is None
    assert book.last_handled("sch-a", second) == first
    book.remove("sch-a")
    assert len(book.runs()) == 2  # runs stay as history
