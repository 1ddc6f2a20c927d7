"""What the integrations report, read from the store's own records: airings, finished broadcasts, alerts.

Read-only: the records are written by the controller as things happen; the integrations turn them into
outbox items keyed by what they are about, so reading the same record twice enqueues it once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Table, or_, select

from speakerctl.store.engine import Sessions
from speakerctl.store.live import live_clusters, live_streams
from speakerctl.store.models import aware_utc
from speakerctl.store.monitoring import AlertInfo, AlertRow
from speakerctl.store.tables import BroadcastRow, BulletinRow, DeliveryRow

_BATCH = 5000
_DELIVERIES: Table = DeliveryRow.__table__  # type: ignore[attr-defined]
_BROADCASTS: Table = BroadcastRow.__table__  # type: ignore[attr-defined]
_BULLETINS: Table = BulletinRow.__table__  # type: ignore[attr-defined]
_ALERTS: Table = AlertRow.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class AiredRecord:
    """One airing on one cluster: a bulletin's broadcast, or a relayed live stream."""

    airing_id: str
    """The broadcast id, or the live stream id."""
    device_id: str
    zone_id: str | None
    kind: str
    """"bulletin" or "live"."""
    bulletin_id: int | None
    title: str
    priority: int
    duration_ms: int
    author: str
    started_by: str
    started_at: datetime
    ended_at: datetime
    state: str
    relay: bool
    relay_source: str


@dataclass(frozen=True, slots=True)
class FinishedBroadcast:
    """A broadcast that has ended, with its bulletin's title."""

    id: str
    bulletin_id: int
    title: str
    priority: int
    targets: str
    state: str
    created_at: datetime
    completed_at: datetime
    started_by: str


class EventReader:
    """The records the integrations report, each kind read from a time on (inclusive), oldest first."""

    def __init__(self, sessions: Sessions) -> None:
        self._db = sessions

    def airings_since(self, since: datetime, device_ids: set[str] | None = None) -> list[AiredRecord]:
        """Bulletin deliveries that played and ended, and live relays that ended, since `since`."""
        found = self._bulletin_airings(aware_utc(since, "since")) + self._live_airings(
            aware_utc(since, "since")
        )
        if device_ids is not None:
            found = [a for a in found if a.device_id in device_ids]
        return sorted(found, key=lambda a: (a.ended_at, a.airing_id, a.device_id))

    def _bulletin_airings(self, since: datetime) -> list[AiredRecord]:
        d, b, n = _DELIVERIES.c, _BROADCASTS.c, _BULLETINS.c
        query = (
            select(
                _DELIVERIES,
                b.priority,
                b.started_by,
                n.id.label("bulletin"),
                n.title,
                n.duration_ms,
                n.created_by,
            )
            .join(_BROADCASTS, b.id == d.broadcast_id)
            .join(_BULLETINS, n.id == b.bulletin_id)
            .where(d.playing_at.is_not(None), d.finished_at >= since)
            .order_by(d.finished_at)
            .limit(_BATCH)
        )
        with self._db.begin(write=False) as c:
            rows = c.execute(query).mappings().all()
        return [
            AiredRecord(
                r["broadcast_id"], r["device_id"], r["zone_id"], "bulletin", r["bulletin"], r["title"],
                r["priority"], r["duration_ms"], r["created_by"], r["started_by"], r["playing_at"],
                r["finished_at"], r["state"], False, "",
            )
            for r in rows
        ]  # fmt: skip

    def _live_airings(self, since: datetime) -> list[AiredRecord]:
        k, s = live_clusters.c, live_streams.c
        query = (
            select(live_clusters, s.source, s.actor, s.priority, s.targets)
            .join(live_streams, s.id == k.stream_id)
            .where(k.started_at.is_not(None), k.ended_at >= since)
            .order_by(k.ended_at)
            .limit(_BATCH)
        )
        with self._db.begin(write=False) as c:
            rows = c.execute(query).mappings().all()
        return [
            AiredRecord(
                r["stream_id"], r["device_id"], None, "live", None, r["source"], r["priority"],
                int((r["ended_at"] - r["started_at"]).total_seconds() * 1000), r["actor"], r["actor"],
                r["started_at"], r["ended_at"], r["reason"] or "finished", True, r["source"],
            )
            for r in rows
        ]  # fmt: skip

    def finished_broadcasts(self, since: datetime) -> list[FinishedBroadcast]:
        """Broadcasts that ended since `since`, oldest first."""
        b, n = _BROADCASTS.c, _BULLETINS.c
        query = (
            select(_BROADCASTS, n.title)
            .join(_BULLETINS, n.id == b.bulletin_id)
            .where(b.completed_at >= aware_utc(since, "since"))
            .order_by(b.completed_at, b.id)
            .limit(_BATCH)
        )
        with self._db.begin(write=False) as c:
            rows = c.execute(query).mappings().all()
        return [
            FinishedBroadcast(
                r["id"], r["bulletin_id"], r["title"], r["priority"], r["targets"], r["state"],
                r["created_at"], r["completed_at"], r["started_by"],
            )
            for r in rows
        ]  # fmt: skip

    def alerts_since(self, since: datetime) -> list[AlertInfo]:
        """Alerts opened or closed since `since`, by id."""
        a = _ALERTS.c
        when = aware_utc(since, "since")
        query = (
            select(_ALERTS).where(or_(a.opened_at >= when, a.closed_at >= when)).order_by(a.id).limit(_BATCH)
        )
        with self._db.begin(write=False) as c:
            rows = c.execute(query).mappings().all()
        return [
            AlertInfo(r["id"], r["kind"], r["device_id"], r["opened_at"], r["closed_at"], r["detail"])
            for r in rows
        ]
