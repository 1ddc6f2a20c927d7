"""`Store`: every read and write of the controller's database, one engine and a Session per call."""

from __future__ import annotations

import json
import logging
import threading
from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event, func, inspect
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.pool import ConnectionPoolEntry, StaticPool
from sqlmodel import Session, SQLModel, col, delete, insert, select, update

from speakerctl.errors import NotFound, ProtocolError, StoreError
from speakerctl.fleet import Zone
from speakerctl.protocol import Priority, Status
from speakerctl.protocol.lifecycle import FINAL, supersedes
from speakerctl.store.library import LibraryMixin, live_bulletin
from speakerctl.store.migrations import migrate
from speakerctl.store.models import (
    BroadcastInfo,
    BroadcastState,
    BulletinInfo,
    DeliveryInfo,
    DeliveryStatus,
    DeliveryUpdate,
    DeviceInfo,
    DeviceSpecLike,
    StatusRecord,
    VariantInfo,
    aware_utc,
    zone_subtree,
)
from speakerctl.store.monitoring import MonitoringMixin
from speakerctl.store.tables import (
    SCHEMA_VERSION,
    BroadcastRow,
    BulletinRow,
    DeliveryRow,
    DeviceRow,
    SchemaVersionRow,
    StatusHistoryRow,
    VariantRow,
    ZoneRow,
)

log = logging.getLogger(__name__)

_WRITE = "speakerctl_write"
"""Execution option marking a write session: SQLite then starts it with BEGIN IMMEDIATE."""
_URL_HINT = "use e.g. sqlite:///var/lib/speakerctl/speakerctl.db or postgresql+psycopg2://user@host/db"
_Row = TypeVar("_Row", bound=SQLModel)
_IN_CHUNK = 5000
_LIVE = col(BulletinRow.removed_at).is_(None)


class Store(MonitoringMixin, LibraryMixin):
    """Thread-safe repository over one engine; takes and returns plain frozen dataclasses."""

    def __init__(self, url: str, *, history_limit: int = 100, prune_every: int = 10) -> None:
        if history_limit < 1 or prune_every < 1:
            raise StoreError("history_limit and prune_every must be at least 1")
        self._engine, self._serial = _engine(url)
        self.history_limit = history_limit
        self.prune_every = prune_every
        self._prune_lock = threading.Lock()
        self._since_prune: dict[str, int] = {}

    @classmethod
    def open(cls, url: str, *, history_limit: int = 100, prune_every: int = 10) -> Store:
        """Connect, create missing tables and check the schema version."""
        store = cls(url, history_limit=history_limit, prune_every=prune_every)
        try:
            store._prepare()
        except BaseException:
            store.close()
            raise
        return store

    def close(self) -> None:
        """Close every pooled connection."""
        self._engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- plumbing ---------------------------------------------------------------------------

    @contextmanager
    def _session(self, *, write: bool = False) -> Iterator[Session]:
        """A Session in one transaction, committed on success if `write`; DB errors → StoreError."""
        try:
            with self._serial, Session(self._engine, expire_on_commit=False) as session:
                session.connection(execution_options={_WRITE: write})
                yield session
                if write:
                    session.commit()
        except SQLAlchemyError as exc:
            raise StoreError(f"database error: {exc}", hint=_db_hint(self._engine)) from exc

    def _prepare(self) -> None:
        """Refuse a newer schema, then create missing tables and record the version."""
        try:
            with self._engine.begin() as conn:
                found = _schema_version(conn)
                if found is not None and found > SCHEMA_VERSION:
                    raise StoreError(
                        f"the database has schema version {found} but this speakerctl knows "
                        f"only up to {SCHEMA_VERSION}",
                        hint="upgrade speakerctl to use this database",
                    )
                SQLModel.metadata.create_all(conn)
                if found is not None:
                    migrate(conn, found, SCHEMA_VERSION)
                if found is None:
                    conn.execute(insert(SchemaVersionRow).values(id=1, version=SCHEMA_VERSION))
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot open the database: {exc}", hint=_db_hint(self._engine)) from exc

    # -- zones and devices -------------------------------------------------------------------

    def sync_zones(self, zones: Iterable[Zone]) -> None:
        """Insert new zones and update known ones; each takes its place in `zones` as its position."""
        wanted = {z.id: (i, z) for i, z in enumerate(zones)}
        with self._session(write=True) as s:
            known = _by_id(s, ZoneRow, wanted)
            for zone_id, (position, zone) in wanted.items():
                if zone_id in known:
                    known[zone_id].update(zone, position)
                else:
                    row = ZoneRow(id=zone.id, name=zone.name, kind=zone.kind, parent_id=zone.parent)
                    row.position = position
                    s.add(row)

    def sync_devices(self, devices: Iterable[DeviceSpecLike]) -> None:
        """Insert new devices; update the inventory fields of known ones, keeping their status."""
        wanted = {d.id: d for d in devices}
        with self._session(write=True) as s:
            zone_ids = set(s.exec(select(ZoneRow.id)))
            for spec in wanted.values():
                if spec.zone_id not in zone_ids:
                    raise NotFound(
                        f"zone {spec.zone_id!r} of device {spec.id!r} not found",
                        hint="sync the zones before the devices",
                    )
            known = _by_id(s, DeviceRow, wanted)
            for device_id, row in known.items():
                row.update(wanted[device_id])
            new = [DeviceRow.inventory(d) for i, d in wanted.items() if i not in known]
            if new:
                s.exec(insert(DeviceRow), params=new)

    def zones(self) -> list[Zone]:
        """Every zone, by position then id."""
        with self._session() as s:
            rows = s.exec(select(ZoneRow).order_by(col(ZoneRow.position), col(ZoneRow.id)))
            return [r.info() for r in rows]

    def zone(self, zone_id: str) -> Zone:
        """One zone, or NotFound."""
        with self._session() as s:
            return _get(s, ZoneRow, zone_id, "zone").info()

    def devices(
        self, zone_ids: Collection[str] | None = None, online: bool | None = None
    ) -> list[DeviceInfo]:
        """Devices by id, optionally only those in (or below) `zone_ids` and/or `online` ones."""
        with self._session() as s:
            query = select(DeviceRow).order_by(col(DeviceRow.id))
            if zone_ids is not None:
                query = query.where(col(DeviceRow.zone_id).in_(_subtree(s, zone_ids)))
            if online is not None:
                query = query.where(col(DeviceRow.online) == online)
            return [r.info() for r in s.exec(query)]

    def device(self, device_id: str) -> DeviceInfo:
        """One device, or NotFound."""
        with self._session() as s:
            return _get(s, DeviceRow, device_id, "device").info()

    def device_ids_in(self, zone_ids: Collection[str]) -> list[str]:
        """Sorted ids of the devices in `zone_ids` or below them; NotFound for an unknown zone."""
        with self._session() as s:
            query = select(DeviceRow.id).where(col(DeviceRow.zone_id).in_(_subtree(s, zone_ids)))
            return list(s.exec(query.order_by(col(DeviceRow.id))))

    # -- bulletins --------------------------------------------------------------------------

    def add_bulletin(
        self,
        title: str,
        sha256: str,
        codec: str,
        container: str,
        bitrate_kbps: int,
        duration_ms: int,
        size: int,
        source_name: str,
        created_by: str,
        created_at: datetime,
        variants: Sequence[VariantInfo] = (),
        *,
        loudness_lufs: float | None = None,
        true_peak_dbtp: float | None = None,
        profile: str = "speech",
    ) -> BulletinInfo:
        """Record an imported bulletin (and its encodings, in one transaction) with its new id."""
        row = BulletinRow(
            title=title,
            sha256=sha256,
            codec=codec,
            container=container,
            bitrate_kbps=bitrate_kbps,
            duration_ms=duration_ms,
            size=size,
            source_name=source_name,
            created_by=created_by,
            created_at=aware_utc(created_at, "created_at"),
            loudness_lufs=loudness_lufs,
            true_peak_dbtp=true_peak_dbtp,
            profile=profile,
        )
        with self._session(write=True) as s:
            s.add(row)
            s.flush()
            assert row.id is not None
            for position, v in enumerate(variants):
                s.add(VariantRow(bulletin_id=row.id, position=position, **_fields(v)))
            return row.info()

    def variants(self, bulletin_id: int) -> list[VariantInfo]:
        """A bulletin's encodings in order of preference (its primary one if none were recorded)."""
        with self._session() as s:
            bulletin = live_bulletin(s, bulletin_id)
            query = select(VariantRow).where(VariantRow.bulletin_id == bulletin_id)
            rows = s.exec(query.order_by(col(VariantRow.position))).all()
            if rows:
                return [r.info() for r in rows]
            b = bulletin.info()
            return [VariantInfo(b.codec, b.container, b.bitrate_kbps, b.sha256, b.size, b.duration_ms)]

    def bulletin(self, bulletin_id: int) -> BulletinInfo:
        """One bulletin, or NotFound (also once removed)."""
        with self._session() as s:
            return live_bulletin(s, bulletin_id).info()

    def bulletin_by_sha(self, sha256: str) -> BulletinInfo | None:
        """The first bulletin with this content hash, if any (removed ones are not)."""
        with self._session() as s:
            query = select(BulletinRow).where(BulletinRow.sha256 == sha256, _LIVE)
            row = s.exec(query.order_by(col(BulletinRow.id)).limit(1)).first()
            return row.info() if row else None

    def bulletins(self) -> list[BulletinInfo]:
        """Every bulletin not removed, oldest first."""
        with self._session() as s:
            query = select(BulletinRow).where(_LIVE).order_by(col(BulletinRow.id))
            return [r.info() for r in s.exec(query)]

    # -- broadcasts and deliveries --------------------------------------------------------------

    def create_broadcast(
        self,
        broadcast_id: str,
        bulletin_id: int,
        priority: int,
        targets: Sequence[str],
        device_ids: Sequence[str],
        created_at: datetime,
        issued_at: datetime,
        expires_at: datetime,
    ) -> BroadcastInfo:
        """Record a running broadcast and a pending delivery per device, in one transaction."""
        row = BroadcastRow(
            id=broadcast_id,
            bulletin_id=bulletin_id,
            priority=_priority(priority),
            targets=json.dumps(list(targets)),
            created_at=aware_utc(created_at, "created_at"),
            issued_at=aware_utc(issued_at, "issued_at"),
            expires_at=aware_utc(expires_at, "expires_at"),
        )
        devices = list(dict.fromkeys(device_ids))
        with self._session(write=True) as s:
            _check_new_broadcast(s, row, devices)
            s.add(row)
            s.flush()
            pending = {"state": DeliveryStatus.PENDING.value, "updated_at": row.created_at}
            if devices:
                s.exec(
                    insert(DeliveryRow),
                    params=[{"broadcast_id": row.id, "device_id": d, **pending} for d in devices],
                )
            return row.info()

    def apply_events(self, events: Sequence[DeliveryUpdate]) -> int:
        """Apply device reports in one transaction, forward only; return how many rows changed."""
        # Events naming no delivery are skipped and logged at WARNING.
        if not events:
            return 0
        with self._session(write=True) as s:
            rows = _lock_deliveries(s, events)
            changed: set[tuple[str, str]] = set()
            unknown: list[tuple[str, str]] = []
            for ev in events:
                row = rows.get((ev.broadcast_id, ev.device_id))
                if row is None:
                    unknown.append((ev.broadcast_id, ev.device_id))
                elif supersedes(ev.state, DeliveryStatus(row.state)):
                    row.apply(ev)
                    changed.add((ev.broadcast_id, ev.device_id))
        if unknown:
            log.warning(
                "skipped %d delivery events with no delivery, e.g. %s",
                len(unknown),
                ", ".join(f"{b}/{d}" for b, d in unknown[:5]),
            )
        return len(changed)

    def mark_unreached(
        self, broadcast_id: str, reason: str = "timeout", *, at: datetime | None = None
    ) -> int:
        """Mark every non-final delivery of a broadcast unreached; return how many."""
        at = aware_utc(at, "at") if at else datetime.now(UTC)
        with self._session(write=True) as s:
            _get(s, BroadcastRow, broadcast_id, "broadcast")
            stmt = (
                update(DeliveryRow)
                .where(col(DeliveryRow.broadcast_id) == broadcast_id)
                .where(col(DeliveryRow.state).not_in([x.value for x in FINAL]))
                .values(state=DeliveryStatus.UNREACHED.value, reason=reason, updated_at=at)
                .execution_options(synchronize_session=False)
            )
            return s.exec(stmt).rowcount

    def finish_broadcast(
        self, broadcast_id: str, state: BroadcastState, completed_at: datetime
    ) -> BroadcastInfo:
        """End a running broadcast; one already ended keeps its state. Returns it as stored."""
        state = BroadcastState(state)
        if state is BroadcastState.RUNNING:
            raise StoreError("a broadcast can only be finished as complete, incomplete or cancelled")
        with self._session(write=True) as s:
            row = _get(s, BroadcastRow, broadcast_id, "broadcast", lock=True)
            if row.state == BroadcastState.RUNNING.value:
                row.state, row.completed_at = state.value, aware_utc(completed_at, "completed_at")
            return row.info()

    def broadcast(self, broadcast_id: str) -> BroadcastInfo:
        """One broadcast, or NotFound."""
        with self._session() as s:
            return _get(s, BroadcastRow, broadcast_id, "broadcast").info()

    def broadcasts(self, limit: int = 20) -> list[BroadcastInfo]:
        """The newest broadcasts, newest first."""
        order = (col(BroadcastRow.created_at).desc(), col(BroadcastRow.id).desc())
        with self._session() as s:
            return [r.info() for r in s.exec(select(BroadcastRow).order_by(*order).limit(limit))]

    def deliveries(self, broadcast_id: str) -> list[DeliveryInfo]:
        """Every delivery of a broadcast, by device id."""
        with self._session() as s:
            _get(s, BroadcastRow, broadcast_id, "broadcast")
            query = select(DeliveryRow).where(col(DeliveryRow.broadcast_id) == broadcast_id)
            return [r.info() for r in s.exec(query.order_by(col(DeliveryRow.device_id)))]

    def delivery_counts(self, broadcast_id: str) -> dict[str, int]:
        """How many deliveries of a broadcast are in each state (every state listed, maybe 0)."""
        with self._session() as s:
            _get(s, BroadcastRow, broadcast_id, "broadcast")
            query = (
                select(DeliveryRow.state, func.count())
                .where(col(DeliveryRow.broadcast_id) == broadcast_id)
                .group_by(col(DeliveryRow.state))
            )
            counts = {state.value: 0 for state in DeliveryStatus}
            counts.update({state: n for state, n in s.exec(query)})
            return counts

    # -- device status ----------------------------------------------------------------------

    def apply_statuses(self, statuses: Sequence[Status], received_at: datetime) -> list[str]:
        """Apply status messages in one transaction; return the ids of unknown devices (skipped)."""
        received_at = aware_utc(received_at, "received_at")
        with self._session(write=True) as s:
            rows = _by_id(s, DeviceRow, {st.device_id for st in statuses}, lock=True)
            unknown = list(dict.fromkeys(st.device_id for st in statuses if st.device_id not in rows))
            applied = [
                st
                for st in statuses
                if st.device_id in rows and rows[st.device_id].take_status(st, received_at)
            ]
            s.add_all(StatusHistoryRow.of(st, received_at) for st in applied)
            s.flush()
            self._prune(s, self._due_for_prune(st.device_id for st in applied))
        return unknown

    def status_history(self, device_id: str, limit: int = 20) -> list[StatusRecord]:
        """A device's latest recorded statuses, newest first (at most `history_limit`)."""
        with self._session() as s:
            _get(s, DeviceRow, device_id, "device")
            query = (
                select(StatusHistoryRow)
                .where(col(StatusHistoryRow.device_id) == device_id)
                .order_by(col(StatusHistoryRow.id).desc())
                .limit(min(limit, self.history_limit))
            )
            try:
                return [r.record() for r in s.exec(query)]
            except ProtocolError as exc:
                raise StoreError(f"unreadable status history of {device_id!r}: {exc}") from exc

    def _due_for_prune(self, device_ids: Iterable[str]) -> list[str]:
        """Devices whose history to trim now: every `prune_every` inserts, and the first time."""
        due: list[str] = []
        with self._prune_lock:
            for device_id in device_ids:
                n = self._since_prune.get(device_id, self.prune_every - 1) + 1
                if n >= self.prune_every:
                    due.append(device_id)
                    n = 0
                self._since_prune[device_id] = n
        return list(dict.fromkeys(due))

    def _prune(self, s: Session, device_ids: list[str]) -> None:
        """Keep only the newest `history_limit` history rows of each device in `device_ids`."""
        if not device_ids:
            return
        rank = func.row_number().over(
            partition_by=StatusHistoryRow.device_id, order_by=col(StatusHistoryRow.id).desc()
        )
        ranked = (
            select(col(StatusHistoryRow.id).label("id"), rank.label("rank"))
            .where(col(StatusHistoryRow.device_id).in_(device_ids))
            .subquery()
        )
        old = select(ranked.c.id).where(ranked.c.rank > self.history_limit)
        stmt = delete(StatusHistoryRow).where(col(StatusHistoryRow.id).in_(old))
        s.exec(stmt.execution_options(synchronize_session=False))


# -- helpers --------------------------------------------------------------------------------


def _engine(url: str) -> tuple[Engine, threading.Lock | nullcontext[None]]:
    """The engine for `url`, and the lock serialising its sessions (only for in-memory SQLite)."""
    try:
        parsed = make_url(url)
        if parsed.get_backend_name() != "sqlite":
            return create_engine(parsed, pool_pre_ping=True), nullcontext()
        database = parsed.database or ""
        memory = database in ("", ":memory:") or parsed.query.get("mode") == "memory"
        if not memory and not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        extra: dict[str, Any] = {"poolclass": StaticPool} if memory else {}
        engine = create_engine(parsed, connect_args={"timeout": 30}, **extra)
    except (ArgumentError, ImportError, OSError, ValueError) as exc:
        raise StoreError(f"cannot use database URL {_redacted(url)!r}: {exc}", hint=_URL_HINT) from exc
    event.listen(engine, "connect", _sqlite_connect)
    event.listen(engine, "begin", _sqlite_begin)
    return engine, threading.Lock() if memory else nullcontext()


def _sqlite_connect(dbapi_conn: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    """WAL with NORMAL sync, a busy timeout, foreign keys; transactions begun by `_sqlite_begin`."""
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    for pragma in (
        "journal_mode=WAL",
        "synchronous=NORMAL",
        "busy_timeout=30000",
        "foreign_keys=ON",
    ):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    """Writers take the write lock up front, so two writers never deadlock upgrading a read lock."""
    immediate = conn.get_execution_options().get(_WRITE, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _redacted(url: str) -> str:
    """`url` without its password, if it parses."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable>"


def _db_hint(engine: Engine) -> str:
    """What to check when the database fails."""
    if engine.dialect.name == "sqlite":
        return f"check that {engine.url.database} is a writable speakerctl database"
    return f"check that the database server at {engine.url.host} is running and reachable"


def _schema_version(conn: Connection) -> int | None:
    """The version recorded in the database, None for a new database."""
    if not inspect(conn).has_table(SchemaVersionRow.__tablename__):
        return None
    version = conn.execute(select(SchemaVersionRow.version)).scalar()
    return None if version is None else int(version)


def _priority(value: int) -> int:
    """A valid priority level as an int."""
    try:
        return int(Priority(value))
    except ValueError as exc:
        raise StoreError(
            f"priority must be 1 (normal), 2 (priority) or 3 (emergency), got {value!r}"
        ) from exc


def _get(s: Session, table: type[_Row], key: str | int, what: str, *, lock: bool = False) -> _Row:
    """The row of `table` with primary key `key`, or NotFound."""
    row = s.get(table, key, with_for_update=lock)
    if row is None:
        raise NotFound(f"{what} {key!r} not found")
    return row


def _by_id(s: Session, table: type[_Row], ids: Collection[str], *, lock: bool = False) -> dict[str, _Row]:
    """Rows of `table` whose `id` is in `ids`, by id (locked for update if `lock`)."""
    id_col = col(table.id)  # type: ignore[attr-defined]
    found: dict[str, _Row] = {}
    for chunk in _chunks(sorted(ids)):
        query = select(table).where(id_col.in_(chunk)).order_by(id_col)
        found.update((r.id, r) for r in s.exec(query.with_for_update() if lock else query))  # type: ignore[attr-defined]
    return found


def _known_device_ids(s: Session, ids: Sequence[str]) -> set[str]:
    """Which of `ids` name a device."""
    known: set[str] = set()
    for chunk in _chunks(ids):
        known.update(s.exec(select(DeviceRow.id).where(col(DeviceRow.id).in_(chunk))))
    return known


def _chunks(ids: Sequence[str]) -> Iterator[Sequence[str]]:
    """`ids` in slices small enough for any database's limit on bound parameters."""
    for start in range(0, len(ids), _IN_CHUNK):
        yield ids[start : start + _IN_CHUNK]


def _subtree(s: Session, zone_ids: Collection[str]) -> frozenset[str]:
    """`zone_ids` and every zone below them; NotFound for an unknown zone."""
    return zone_subtree((r.info() for r in s.exec(select(ZoneRow))), zone_ids)


def _check_new_broadcast(s: Session, row: BroadcastRow, device_ids: list[str]) -> None:
    """NotFound for an unknown bulletin or device; StoreError for a reused broadcast id."""
    if s.get(BroadcastRow, row.id) is not None:
        raise StoreError(f"broadcast {row.id!r} already exists")
    live_bulletin(s, row.bulletin_id, lock=True)
    known = _known_device_ids(s, device_ids)
    missing = [d for d in device_ids if d not in known]
    if missing:
        shown = ", ".join(map(repr, missing[:10])) + (" ..." if len(missing) > 10 else "")
        raise NotFound(f"{len(missing)} device(s) not found: {shown}")


def _lock_deliveries(s: Session, events: Sequence[DeliveryUpdate]) -> dict[tuple[str, str], DeliveryRow]:
    """The deliveries `events` name, locked for update, by (broadcast id, device id)."""
    wanted: dict[str, set[str]] = defaultdict(set)
    for ev in events:
        wanted[ev.broadcast_id].add(ev.device_id)
    rows: dict[tuple[str, str], DeliveryRow] = {}
    for broadcast_id, device_ids in sorted(wanted.items()):
        query = (
            select(DeliveryRow)
            .where(col(DeliveryRow.broadcast_id) == broadcast_id)
            .where(col(DeliveryRow.device_id).in_(sorted(device_ids)))
            .order_by(col(DeliveryRow.device_id))
            .with_for_update()
        )
        rows.update({(r.broadcast_id, r.device_id): r for r in s.exec(query)})
    return rows


def _fields(value: VariantInfo) -> dict[str, Any]:
    return {name: getattr(value, name) for name in VariantInfo.__dataclass_fields__}
