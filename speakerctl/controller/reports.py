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

from speakerctl.errors import ConfigError
from speakerctl.fleet import ZoneTree
from speakerctl.protocol import Priority
from speakerctl.protocol.lifecycle import FINISHED, MISSED, REACHED, UNSUCCESSFUL
from speakerctl.store import DeliveryInfo, PlayRecord, Store

DISTRICT_LEVEL = 1


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
        state = delivery.state
        self.targeted += 1
        self.reached += state in REACHED
        self.played += state is FINISHED
        self.failed += state in UNSUCCESSFUL
        self.missed += state in MISSED
        if state is not FINISHED:
            self.reasons[delivery.reason or state.value] += 1

    def as_dict(self) -> dict[str, object]:
        """JSON-ready."""
        return {
            "zone": self.zone_id,
            "name": self.name,
            "targeted": self.targeted,
            "reached": self.reached,
            "played": self.played,
            "failed": self.failed,
            "missed": self.missed,
            "reasons": dict(self.reasons.most_common()),
        }


def outcome_by_zone(store: Store, broadcast_id: str, level: int = DISTRICT_LEVEL) -> list[ZoneOutcome]:
    """The broadcast's deliveries counted per zone at `level` (1: district), in inventory order."""
    tree = ZoneTree(store.zones.all())
    zone_of = {d.id: d.zone_id for d in store.devices.all()}
    outcomes: dict[str, ZoneOutcome] = {}
    for delivery in store.deliveries.of(broadcast_id):
        zone_id = tree.at_level(zone_of[delivery.device_id], level)
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
)


def play_log(
    store: Store, since: datetime, until: datetime, tz: ZoneInfo, zone_id: str | None = None
) -> list[dict[str, object]]:
    """One row per cluster and broadcast that started playing in [since, until), local times."""
    tree = ZoneTree(store.zones.all())
    devices = {d.id: d for d in store.devices.all(zone_ids=[zone_id] if zone_id else None)}
    records = store.plays.between(since, until, sorted(devices) if zone_id else None)
    return [_play_row(r, devices[r.device_id].name, devices[r.device_id].zone_id, tree, tz) for r in records]


def _play_row(r: PlayRecord, name: str, zone_id: str, tree: ZoneTree, tz: ZoneInfo) -> dict[str, object]:
    started = r.playing_at.astimezone(tz)
    ended = r.ended_at.astimezone(tz) if r.ended_at else None
    aired = round((r.ended_at - r.playing_at).total_seconds(), 1) if r.ended_at else None
    outcome = r.state if r.reason is None else f"{r.state}/{r.reason}"
    return {
        "date": started.date().isoformat(),
        "district": tree.name(tree.at_level(zone_id, DISTRICT_LEVEL)),
        "commune": tree.name(zone_id),
        "cluster_id": r.device_id,
        "cluster": name,
        "bulletin": r.bulletin_title,
        "priority": Priority(r.priority).name.lower(),
        "broadcast_id": r.broadcast_id,
        "started": started.strftime("%Y-%m-%d %H:%M:%S"),
        "ended": ended.strftime("%Y-%m-%d %H:%M:%S") if ended else "",
        "aired_s": aired,
        "outcome": outcome,
    }


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
        raise ConfigError(f"unknown report format {fmt!r}", hint="use csv or xlsx")
