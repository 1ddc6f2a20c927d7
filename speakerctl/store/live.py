"""Live streams in the store: a row per stream (source, who started it, its end) and one per cluster."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import Column, ForeignKey, Integer, RowMapping, String, Table, insert, select, update
from sqlmodel import SQLModel

from speakerctl.errors import NotFound
from speakerctl.i18n import _
from speakerctl.store.engine import Sessions
from speakerctl.store.tables import UTCDateTime

live_streams = Table(
    "live_streams",
    SQLModel.metadata,
    Column("id", String(64), primary_key=True),
    Column("source", String(200), nullable=False),
    Column("actor", String(128), nullable=False),
    Column("targets", String(2000), nullable=False),
    Column("priority", Integer, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("ended_at", UTCDateTime, nullable=True),
    Column("end_reason", String(64), nullable=False, server_default=""),
    Column("frames", Integer, nullable=False, server_default="0"),
)
live_clusters = Table(
    "live_clusters",
    SQLModel.metadata,
    Column("stream_id", String(64), ForeignKey("live_streams.id"), primary_key=True),
    Column("device_id", String(64), primary_key=True),
    Column("skipped", String(200), nullable=False, server_default=""),
    Column("started_at", UTCDateTime, nullable=True),
    Column("ended_at", UTCDateTime, nullable=True),
    Column("reason", String(32), nullable=False, server_default=""),
    Column("played", Integer, nullable=False, server_default="0"),
    Column("lost", Integer, nullable=False, server_default="0"),
    Column("underruns", Integer, nullable=False, server_default="0"),
    Column("forged", Integer, nullable=False, server_default="0"),
)


@dataclass(frozen=True, slots=True)
class LiveRecord:
    """A live stream as stored."""

    id: str
    source: str
    actor: str
    targets: tuple[str, ...]
    priority: int
    started_at: datetime
    ended_at: datetime | None = None
    end_reason: str = ""
    frames: int = 0


@dataclass(frozen=True, slots=True)
class LiveClusterRecord:
    """One cluster's part in a live stream: skipped (and why), or when it played and how well."""

    device_id: str
    skipped: str = ""
    started_at: datetime | None = None
    ended_at: datetime | None = None
    reason: str = ""
    played: int = 0
    lost: int = 0
    underruns: int = 0
    forged: int = 0


class LiveRepository:
    """Live streams and their clusters; a stream's row is written at its start and closed at its end."""

    def __init__(self, sessions: Sessions) -> None:
        self._db = sessions

    def begin(self, record: LiveRecord, clusters: list[LiveClusterRecord]) -> None:
        """Record a stream as it starts, with every targeted cluster."""
        row = asdict(record) | {"targets": " ".join(record.targets)}
        with self._db.begin() as c:
            c.execute(insert(live_streams).values(**row))
            if clusters:
                c.execute(insert(live_clusters), [{"stream_id": record.id, **asdict(k)} for k in clusters])

    def update_cluster(self, stream_id: str, cluster: LiveClusterRecord) -> None:
        """Replace one cluster's part (its counters only grow; the caller folds the events)."""
        where = (live_clusters.c.stream_id == stream_id) & (live_clusters.c.device_id == cluster.device_id)
        with self._db.begin() as c:
            c.execute(update(live_clusters).where(where).values(**asdict(cluster)))

    def end(self, stream_id: str, at: datetime, reason: str, frames: int) -> None:
        """Close a stream."""
        values = {"ended_at": at, "end_reason": reason[:64], "frames": frames}
        with self._db.begin() as c:
            c.execute(update(live_streams).where(live_streams.c.id == stream_id).values(**values))

    def running(self) -> list[LiveRecord]:
        """Streams not yet ended, oldest first."""
        query = (
            select(live_streams).where(live_streams.c.ended_at.is_(None)).order_by(live_streams.c.started_at)
        )
        with self._db.begin(write=False) as c:
            return [_record(r) for r in c.execute(query).mappings().all()]

    def latest(self, limit: int = 20) -> list[LiveRecord]:
        """The most recent streams, newest first."""
        query = select(live_streams).order_by(live_streams.c.started_at.desc()).limit(limit)
        with self._db.begin(write=False) as c:
            return [_record(r) for r in c.execute(query).mappings().all()]

    def get(self, stream_id: str) -> LiveRecord:
        """One stream, or NotFound."""
        with self._db.begin(write=False) as c:
            row = c.execute(select(live_streams).where(live_streams.c.id == stream_id)).mappings().first()
        if row is None:
            raise NotFound(_("no live stream {id!r}").format(id=stream_id))
        return _record(row)

    def clusters(self, stream_id: str) -> list[LiveClusterRecord]:
        """Every cluster of a stream, by device id."""
        query = (
            select(live_clusters)
            .where(live_clusters.c.stream_id == stream_id)
            .order_by(live_clusters.c.device_id)
        )
        with self._db.begin(write=False) as c:
            rows = c.execute(query).mappings().all()
        return [LiveClusterRecord(**{k: v for k, v in r.items() if k != "stream_id"}) for r in rows]


def _record(row: RowMapping) -> LiveRecord:
    values = dict(row)
    values["targets"] = tuple(values["targets"].split())
    return LiveRecord(**values)
