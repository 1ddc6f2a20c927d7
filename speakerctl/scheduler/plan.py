"""What airs where, after priority resolution: the day's plan, and overlaps between schedules."""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from speakerctl.protocol import PreemptPolicy, Priority
from speakerctl.scheduler.model import Schedule


@dataclass(frozen=True, slots=True)
class Item:
    """One occurrence of a schedule on one target."""

    schedule_id: str
    target: str
    start: datetime
    duration: timedelta
    priority: Priority
    policy: PreemptPolicy

    def beats(self, other: Item) -> bool:
        """Whether this one, arriving while `other` plays, cuts in (the device's rule, §9)."""
        if self.priority != other.priority:
            return self.priority > other.priority
        return self.priority is Priority.EMERGENCY


@dataclass(frozen=True, slots=True)
class Segment:
    """A stretch of air time on one target."""

    target: str
    start: datetime
    end: datetime
    schedule_id: str
    priority: Priority
    note: str = ""


@dataclass(order=True)
class _Queued:
    key: tuple[int, float]
    seq: int
    item: Item = field(compare=False)
    left: timedelta = field(compare=False)
    note: str = field(compare=False, default="")


def occurrences_on(
    schedules: Iterable[Schedule], durations: Mapping[int, int], day: date, zone: ZoneInfo
) -> list[Item]:
    """Every occurrence of active schedules starting on a local day, one item per target."""
    start = datetime.combine(day, time(), tzinfo=zone)
    items: list[Item] = []
    for s in schedules:
        if s.paused:
            continue
        length = timedelta(milliseconds=s.length_ms(durations))
        for at in s.rule.occurrences(start - timedelta(microseconds=1), start + timedelta(days=1)):
            if at < start + timedelta(days=1):
                items += [Item(s.id, t, at, length, s.priority, s.on_preempt) for t in s.targets]
    return sorted(items, key=lambda i: (i.target, i.start))


def resolve(items: Iterable[Item]) -> list[Segment]:
    """Air time per target after preemption, resumption and queueing, in order."""
    by_target: dict[str, list[Item]] = {}
    for item in sorted(items, key=lambda i: i.start):
        by_target.setdefault(item.target, []).append(item)
    out: list[Segment] = []
    for target in sorted(by_target):
        out += _resolve_one(by_target[target])
    return sorted(out, key=lambda s: (s.start, s.target))


def _rank(item: Item, seq: int) -> tuple[int, float]:
    newest = item.start.timestamp() if item.priority is Priority.EMERGENCY else -item.start.timestamp()
    return (-int(item.priority), -newest)


def _resolve_one(items: list[Item]) -> list[Segment]:
    segments: list[Segment] = []
    queue: list[_Queued] = []
    pending = list(items)
    now: datetime | None = None
    seq = 0
    while pending or queue:
        if not queue:
            nxt = pending.pop(0)
            now = max(now or nxt.start, nxt.start)
            queue.append(_Queued(_rank(nxt, seq), seq, nxt, nxt.duration))
            seq += 1
        assert now is not None
        current = heapq.heappop(queue)
        end = now + current.left
        cutter = next((p for p in pending if p.start < end and p.beats(current.item)), None)
        stop = cutter.start if cutter else end
        segments.append(
            Segment(
                current.item.target, now, stop, current.item.schedule_id, current.item.priority, current.note
            )
        )
        while pending and pending[0].start <= stop:
            p = pending.pop(0)
            heapq.heappush(queue, _Queued(_rank(p, seq), seq, p, p.duration, _waited(p, stop)))
            seq += 1
        if cutter is not None:
            _requeue(queue, current, stop - now, cutter)
        now = stop
    return segments


def _waited(item: Item, until: datetime) -> str:
    return "" if until <= item.start else "delayed"


def _requeue(queue: list[_Queued], current: _Queued, played: timedelta, cutter: Item) -> None:
    policy = current.item.policy
    if policy is PreemptPolicy.DROP:
        return
    left = current.left - played if policy is PreemptPolicy.RESUME else current.item.duration
    heapq.heappush(queue, _Queued(current.key, current.seq, current.item, left, f"{policy.value}d"))


@dataclass(frozen=True, slots=True)
class Overlap:
    """A new schedule's occurrence that overlaps an existing one on shared clusters."""

    existing_id: str
    at: datetime
    winner_id: str
    why: str


def overlaps(
    new: Schedule,
    existing: Iterable[Schedule],
    durations: Mapping[int, int],
    shares_devices: Callable[[Schedule, Schedule], bool],
    since: datetime,
    days: int = 14,
) -> list[Overlap]:
    """Where `new` overlaps existing schedules in the next `days`, and which one wins each time."""
    until = since + timedelta(days=days)
    mine = [(at, at + _length(new, durations)) for at in new.rule.occurrences(since, until)]
    found: list[Overlap] = []
    for other in existing:
        if other.id == new.id or other.paused or not shares_devices(new, other):
            continue
        theirs = [(at, at + _length(other, durations)) for at in other.rule.occurrences(since, until)]
        hit = next(((a, b) for a in mine for b in theirs if a[0] < b[1] and b[0] < a[1]), None)
        if hit is not None:
            found.append(_verdict(new, hit[0][0], other, hit[1][0]))
    return found


def _length(s: Schedule, durations: Mapping[int, int]) -> timedelta:
    return timedelta(milliseconds=max(s.length_ms(durations), 1000))


def _verdict(new: Schedule, new_at: datetime, old: Schedule, old_at: datetime) -> Overlap:
    if new.priority != old.priority:
        winner = new if new.priority > old.priority else old
        return Overlap(old.id, new_at, winner.id, f"{winner.priority.wire} outranks the other")
    if new.priority is Priority.EMERGENCY:
        winner = new if new_at >= old_at else old
        return Overlap(old.id, new_at, winner.id, "same level, emergency: the newest wins")
    winner = new if new_at < old_at else old
    return Overlap(old.id, new_at, winner.id, "same level: first come, first served")
