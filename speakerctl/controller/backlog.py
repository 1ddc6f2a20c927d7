"""What the ingestor holds for the store: bounded, merged before anything is dropped, and counted.

While the store is down, statuses and delivery reports wait here for the next flush. Past the cap
(plus a tenth, so merging is not redone on every message of a flood) the backlog is merged:

- statuses: the latest of each device is kept (the history between is what an outage costs);
- delivery reports: first the duplicates go (per broadcast, device and rank, the first report is the
  one the store would keep anyway), then, if still too many, each delivery keeps only its
  highest-ranked report (`protocol.lifecycle.RANK`: a final state beats `playing`, and so on).

Only what is still over the cap after merging is dropped, oldest first; both are counted.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from speakerctl.protocol import Status
from speakerctl.protocol.lifecycle import RANK
from speakerctl.store import DeliveryUpdate

Row = TypeVar("Row", Status, DeliveryUpdate)


@dataclass(slots=True)
class Shrunk:
    """What one merge did: rows folded into others, rows dropped."""

    merged: int = 0
    dropped: int = 0


class Backlog(Generic[Row]):
    """Rows waiting for the store, oldest first, never more than about `cap` of them."""

    def __init__(self, cap: int, merge: Callable[[list[Row], int], list[Row]]) -> None:
        self.cap = cap
        self._merge: Callable[[list[Row], int], list[Row]] = merge
        self._rows: list[Row] = []

    def __len__(self) -> int:
        return len(self._rows)

    def add(self, row: Row) -> Shrunk:
        """Hold one more row; merge (and drop) if the backlog ran over."""
        self._rows.append(row)
        return self._shrink() if len(self._rows) > self.cap + self.cap // 10 else Shrunk()

    def take(self) -> list[Row]:
        """Everything held, oldest first, for a write."""
        rows, self._rows = self._rows, []
        return rows

    def put_back(self, rows: Sequence[Row]) -> Shrunk:
        """Rows a write could not store, ahead of what came in meanwhile."""
        self._rows[:0] = rows
        return self._shrink() if len(self._rows) > self.cap else Shrunk()

    def _shrink(self) -> Shrunk:
        merged = self._merge(self._rows, self.cap)
        excess = max(0, len(merged) - self.cap)
        done = Shrunk(len(self._rows) - len(merged), excess)
        self._rows = merged[excess:]
        return done


def latest_per_device(statuses: list[Status], cap: int) -> list[Status]:
    """Each device's latest status, in the order the latest ones came."""
    latest: dict[str, Status] = {}
    for status in statuses:
        latest.pop(status.device_id, None)
        latest[status.device_id] = status
    return list(latest.values())


def merged_reports(updates: list[DeliveryUpdate], cap: int) -> list[DeliveryUpdate]:
    """Duplicates out; if still over `cap`, one report per delivery: its highest-ranked."""
    first: dict[tuple[str, str, int], DeliveryUpdate] = {}
    for update in updates:
        first.setdefault((update.broadcast_id, update.device_id, RANK[update.state]), update)
    if len(first) <= cap:
        return list(first.values())
    best: dict[tuple[str, str], DeliveryUpdate] = {}
    for update in first.values():
        key = (update.broadcast_id, update.device_id)
        held = best.get(key)
        if held is None or RANK[update.state] > RANK[held.state]:
            best[key] = update
    return list(best.values())
