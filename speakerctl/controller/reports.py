"""Reports for the district and the province: one broadcast per zone, and the play log of a period.

The play log is written as CSV (UTF-8 with a BOM, so Excel shows Vietnamese names right) or XLSX.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from speakerctl.errors import UsageError
from speakerctl.fleet import ZoneTree
from speakerctl.protocol import Priority
from speakerctl.protocol.lifecycle import STOPPED
from speakerctl.store import DeliveryInfo, PlayRecord, Store

DISTRICT_LEVEL = 1
REACHED = frozenset({"accepted", "content_ready", "playing", "finished", "failed", "expired"})
FAILED = frozenset({"failed", "expired"})
MISSED = frozenset({"pending", "unreached"})


@dataclass(slots=True)
class ZoneOutcome:
    """How one broadcast went in one zone."""

    zone_id: str
    name: str
    targeted: int = 0
    reached: int = 0
    played: int = 0
    failed: int = 0
    missed: int = 0
    reasons: Counter[str] = field(default_factory=Counter)

    def add(self, delivery: DeliveryInfo) -> None:
        """Count one device's delivery."""
        state = delivery.state.value
        self.targeted += 1
        self.reached += state in REACHED
        self.played += state == "finished"
        self.failed += state in FAILED
        self.missed += state in MISSED
        if state != "finished":
            self.reasons[delivery.reason or state] += 1


def outcome_by_zone(store: Store, broadcast_id: str, level: int = DISTRICT_LEVEL) -> list[ZoneOutcome]:
    """The broadcast's deliveries counted per zone at `level` (1: district), in inventory order."""
    tree = ZoneTree(store.zones.all())
    zone_of = {d.id: d.zone_id for d in store.devices.all()}
    outcomes: dict[str, ZoneOutcome] = {}
    for delivery in store.deliveries.of(broadcast_id):
        zone_id = tree.at_level(delivery.zone_id or zone_of[delivery.device_id], level)
        outcome = outcomes.setdefault(zone_id, ZoneOutcome(zone_id, tree.name(zone_id)))
        outcome.add(delivery)
    rank = {z: i for i, z in enumerate(tree.tree_order())}
    return sorted(outcomes.values(), key=lambda o: rank.get(o.zone_id, len(rank)))


PLAY_LOG_COLUMNS = (
    "date",
    "district",
    "commune",
    "cluster_id",
    "cluster",
    "bulletin",
    "priority",
    "broadcast_id",
    "started",
    "ended",
    "aired_s",
    "outcome",
    "cap",
)


@dataclass(frozen=True, slots=True)
class PlayEntry:
    """One cluster's airing of one broadcast, with where the cluster is."""

    district: str
    commune: str
    device_id: str
    device_name: str
    record: PlayRecord

    @property
    def aired_s(self) -> float | None:
        """Seconds it played, if it ended."""
        r = self.record
        return round((r.ended_at - r.playing_at).total_seconds(), 1) if r.ended_at else None

    @property
    def outcome(self) -> str:
        """The final state, with the reason if any ("failed/amplifier_fault"); a stop says by whom."""
        r = self.record
        if r.state == STOPPED:
            return f"{r.state} ({r.detail})" if r.detail else r.state
        return r.state if r.reason is None else f"{r.state}/{r.reason}"

    def row(self, tz: ZoneInfo) -> dict[str, object]:
        """The play-log row for people (CSV, XLSX, tables), in local time."""
        r = self.record
        started = r.playing_at.astimezone(tz)
        ended = r.ended_at.astimezone(tz) if r.ended_at else None
        return {
            "date": started.date().isoformat(),
            "district": self.district,
            "commune": self.commune,
            "cluster_id": self.device_id,
            "cluster": self.device_name,
            "bulletin": r.bulletin_title,
            "priority": Priority(r.priority).name.lower(),
            "broadcast_id": r.broadcast_id,
            "started": started.strftime("%Y-%m-%d %H:%M:%S"),
            "ended": ended.strftime("%Y-%m-%d %H:%M:%S") if ended else "",
            "aired_s": self.aired_s,
            "outcome": self.outcome,
            "cap": "",  # the CAP identifier, filled in by whoever knows the alerts (app/reports.py)
        }


def play_entries(
    store: Store, since: datetime, until: datetime, zone_id: str | None = None
) -> list[PlayEntry]:
    """One entry per cluster and broadcast that started playing in [since, until)."""
    tree = ZoneTree(store.zones.all())
    devices = {d.id: d for d in store.devices.all(zone_ids=[zone_id] if zone_id else None)}
    records = store.plays.between(since, until, sorted(devices) if zone_id else None)
    # Each airing is placed where its cluster was when it aired, not where a later remap put it.
    return [
        _entry(r, devices[r.device_id].name, r.zone_id or devices[r.device_id].zone_id, tree) for r in records
    ]


def _entry(r: PlayRecord, name: str, zone_id: str, tree: ZoneTree) -> PlayEntry:
    district = tree.name(tree.at_level(zone_id, DISTRICT_LEVEL))
    return PlayEntry(district, tree.name(zone_id), r.device_id, name, r)


def play_log(
    store: Store, since: datetime, until: datetime, tz: ZoneInfo, zone_id: str | None = None
) -> list[dict[str, object]]:
    """One row per cluster and broadcast that started playing in [since, until), local times."""
    return [e.row(tz) for e in play_entries(store, since, until, zone_id)]


def write_csv(rows: Sequence[dict[str, object]], path: Path) -> None:
    """CSV in UTF-8 with a byte-order mark, so Excel opens Vietnamese text correctly."""
    with path.open("w", encoding="utf-8-sig", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=PLAY_LOG_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def write_xlsx(rows: Sequence[dict[str, object]], path: Path, title: str) -> None:
    """One sheet with a header row, frozen, with columns wide enough to read."""
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "play log"
    sheet.append([title])
    sheet.append(list(PLAY_LOG_COLUMNS))
    for row in rows:
        sheet.append([_cell(row[c]) for c in PLAY_LOG_COLUMNS])
    sheet.freeze_panes = "A3"
    for letter, width in zip("ABCDEFGHIJKL", (11, 18, 22, 30, 34, 30, 10, 26, 20, 20, 8, 22), strict=True):
        sheet.column_dimensions[letter].width = width
    book.save(path)


def _cell(value: object) -> str | float | int | None:
    return value if isinstance(value, str | float | int) or value is None else str(value)


def export(rows: Sequence[dict[str, object]], path: Path, fmt: str, title: str) -> None:
    """Write the play log as `fmt` (csv or xlsx)."""
    if fmt == "csv":
        write_csv(rows, path)
    elif fmt == "xlsx":
        write_xlsx(rows, path, title)
    else:
        raise UsageError(f"unknown report format {fmt!r}", hint="use csv or xlsx")
