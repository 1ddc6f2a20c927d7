"""Schedule services the CLI calls: add with overlap warnings, next fire times, the day's preview."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import date, datetime

from speakerctl.scheduler.book import ScheduleBook
from speakerctl.scheduler.model import Schedule
from speakerctl.scheduler.plan import Overlap, Segment, occurrences_on, overlaps, resolve
from speakerctl.scheduler.rules import zone_info
from speakerctl.store import Store

Reach = Callable[[tuple[str, ...]], Collection[str]]
"""The device ids a list of zone and device ids reaches (NotFound for an unknown one); the controller's."""


@dataclass(frozen=True, slots=True)
class Added:
    """A schedule just added, its next air time, and what it overlaps."""

    schedule: Schedule
    next_at: datetime | None
    overlaps: list[Overlap]


def durations(store: Store) -> dict[int, int]:
    """Bulletin lengths, milliseconds, by bulletin id."""
    return {b.id: b.duration_ms for b in store.bulletins.all()}


class DeviceSets:
    """The clusters a schedule's targets reach, cached per target list."""

    def __init__(self, reach: Reach) -> None:
        self.reach = reach
        self._cache: dict[tuple[str, ...], frozenset[str]] = {}

    def of(self, targets: tuple[str, ...]) -> frozenset[str]:
        """Device ids under the targets (NotFound for an unknown one)."""
        if targets not in self._cache:
            self._cache[targets] = frozenset(self.reach(targets))
        return self._cache[targets]

    def share(self, a: Schedule, b: Schedule) -> bool:
        """Whether two schedules reach a common cluster."""
        return bool(self.of(a.targets) & self.of(b.targets))


def add_schedule(store: Store, book: ScheduleBook, schedule: Schedule, now: datetime, reach: Reach) -> Added:
    """Validate the bulletin and targets, store the schedule, and report overlaps in the next 14 days."""
    store.bulletins.get(schedule.bulletin_id)
    sets = DeviceSets(reach)
    sets.of(schedule.targets)
    found = overlaps(schedule, book.all(), durations(store), sets.share, now)
    book.add(schedule)
    return Added(schedule, schedule.rule.next_after(now), found)


def preview(store: Store, book: ScheduleBook, day: date, timezone: str) -> list[Segment]:
    """What airs where on a local day, in order, after priority resolution."""
    items = occurrences_on(book.all(), durations(store), day, zone_info(timezone))
    return resolve(items)
