"""Repositories of broadcasts and their deliveries (one per device), and where a bulletin has aired."""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import case, func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, insert, select, update

from speakerctl.errors import AlreadyClaimed, NotFound, StoreError
from speakerctl.i18n import _
from speakerctl.protocol import PreemptPolicy, Priority
from speakerctl.protocol.lifecycle import FINAL, STOPPED_REASON, supersedes
from speakerctl.store.coordination import (
    Claim,
    Fence,
    check_fence,
    claimed_by,
    drop_claim,
    held_claim,
    insert_claim,
    lapsed,
    retake_claim,
)
from speakerctl.store.engine import Sessions
from speakerctl.store.library import live_bulletin
from speakerctl.store.models import (
    BroadcastInfo,
    BroadcastState,
    DeliveryInfo,
    DeliveryStatus,
    DeliveryUpdate,
    StopOrder,
    aware_utc,
)
from speakerctl.store.queries import chunks, get_row
from speakerctl.store.tables import BroadcastRow, DeliveryRow, DeviceRow

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Airing:
    """One broadcast of a bulletin: where it went, when, and how many clusters played it."""

    broadcast: BroadcastInfo
    clusters: int
    played: int
    first_playing_at: datetime | None
    last_finished_at: datetime | None


class BroadcastRepository:
    """Broadcasts: created with a pending delivery per device, then finished once."""

    def __init__(self, sessions: Sessions) -> None:
        self._db = sessions

    def create(
        self,
        broadcast_id: str,
        bulletin_id: int,
        priority: int,
        targets: Sequence[str],
        device_ids: Sequence[str],
        created_at: datetime,
        issued_at: datetime,
        expires_at: datetime,
        *,
        start_at: datetime | None = None,
        volume: int | None = None,
        on_preempt: PreemptPolicy = PreemptPolicy.DROP,
        owner: str = "",
        started_by: str = "",
        approved_by: str = "",
        fence: Fence | None = None,
        claim: Claim | None = None,
    ) -> BroadcastInfo:
        """Record a running broadcast and a pending delivery per device, in one transaction.

        `start_at`, `volume` and `on_preempt` are the play command's, kept so a resumed play repeats them;
        `owner` is the client id of the controller that sends it. With several controllers, `fence` is
        the lease it is sent under (FencedOut once lost) and `claim` the schedule occurrence it airs
        (AlreadyClaimed if another broadcast has it): refused in the same transaction, nothing stored.
        """
        row = BroadcastRow(
            id=broadcast_id,
            bulletin_id=bulletin_id,
            priority=_priority(priority),
            targets=json.dumps(list(targets)),
            created_at=aware_utc(created_at, "created_at"),
            issued_at=aware_utc(issued_at, "issued_at"),
            expires_at=aware_utc(expires_at, "expires_at"),
            start_at=aware_utc(start_at, "start_at") if start_at else None,
            volume=volume,
            on_preempt=PreemptPolicy(on_preempt).value,
            owner=owner,
            started_by=started_by,
            approved_by=approved_by,
        )
        devices = list(dict.fromkeys(device_ids))
        with self._db.session(write=True) as s:
            _check_new_broadcast(s, row, devices)
            check_fence(s.connection(), fence)
            if claim is not None and claimed_by(s.connection(), claim) != broadcast_id:
                raise AlreadyClaimed(
                    _("occurrence {at} of schedule {id} was claimed already").format(
                        at=claim.occurrence_at.isoformat(), id=claim.schedule_id
                    )
                )
            s.add(row)
            s.flush()
            pending = {"state": DeliveryStatus.PENDING.value, "updated_at": row.created_at}
            zone_of = _zones_of(s, devices)
            if devices:
                s.exec(
                    insert(DeliveryRow),
                    params=[
                        {"broadcast_id": row.id, "device_id": d, "zone_id": zone_of.get(d), **pending}
                        for d in devices
                    ],
                )
            return row.info()

    def finish(self, broadcast_id: str, state: BroadcastState, completed_at: datetime) -> BroadcastInfo:
        """End a running broadcast; one already ended keeps its state. Returns it as stored."""
        state = BroadcastState(state)
        if state is BroadcastState.RUNNING:
            raise StoreError("a broadcast can only be finished as complete, incomplete or cancelled")
        with self._db.session(write=True) as s:
            row = get_row(s, BroadcastRow, broadcast_id, "broadcast", lock=True)
            if row.state == BroadcastState.RUNNING.value:
                row.state, row.completed_at = state.value, aware_utc(completed_at, "completed_at")
            return row.info()

    def stop(self, broadcast_id: str, stop: StopOrder) -> BroadcastInfo:
        """Record a stop in one transaction: its clusters' open deliveries `stopped`, and the broadcast
        `stopped` (by whom, when) if `stop.whole`; a broadcast that has ended is returned unchanged."""
        at = aware_utc(stop.at, "at")
        with self._db.session(write=True) as s:
            row = get_row(s, BroadcastRow, broadcast_id, "broadcast", lock=True)
            if row.state != BroadcastState.RUNNING.value:
                return row.info()
            _stop_deliveries(s, broadcast_id, stop.device_ids, stop.detail, at)
            if stop.whole:
                row.state, row.completed_at, row.stopped_by = BroadcastState.STOPPED.value, at, stop.by
            return row.info()

    def take_over(self, broadcast_id: str, old_owner: str, new_owner: str, fence: Fence | None) -> bool:
        """Make `new_owner` the owner of a running broadcast whose owner's lease lapsed, under `fence`.

        False if it ended, changed hands, or its owner came back meanwhile; FencedOut if `fence` is lost.
        """
        with self._db.session(write=True) as s:
            conn = s.connection()
            check_fence(conn, fence)
            if not lapsed(conn, old_owner):
                return False
            moved = s.exec(
                update(BroadcastRow)
                .where(col(BroadcastRow.id) == broadcast_id)
                .where(col(BroadcastRow.owner) == old_owner)
                .where(col(BroadcastRow.state) == BroadcastState.RUNNING.value)
                .values(owner=new_owner)
            )
            return bool(moved.rowcount == 1)

    def reissue(self, broadcast_id: str, owner: str, issued_at: datetime) -> bool:
        """Move a running broadcast's issued_at to the moment its play is published, while `owner`
        still owns it. False if it changed hands or ended: then the play keeps the stamp stored.

        The play's id derives from issued_at and a resumed play is rebuilt from the stored value, so
        the stamp must be stored before the play is published; the owner condition makes a takeover
        (which re-reads the broadcast after taking it) and this update see one stamp, whichever is first.
        """
        with self._db.session(write=True) as s:
            moved = s.exec(
                update(BroadcastRow)
                .where(col(BroadcastRow.id) == broadcast_id)
                .where(col(BroadcastRow.owner) == owner)
                .where(col(BroadcastRow.state) == BroadcastState.RUNNING.value)
                .values(issued_at=aware_utc(issued_at, "issued_at"))
            )
            return bool(moved.rowcount == 1)

    def published(self, broadcast_id: str, owner: str, at: datetime) -> None:
        """Record that `owner` published the running broadcast's play to every target topic at `at`.

        Each topic's publish was acknowledged by the broker, which then holds the play for every
        cluster subscribed: a resumed broadcast with this mark is not sent again (controller/resume.py).
        """
        with self._db.session(write=True) as s:
            s.exec(
                update(BroadcastRow)
                .where(col(BroadcastRow.id) == broadcast_id)
                .where(col(BroadcastRow.owner) == owner)
                .where(col(BroadcastRow.state) == BroadcastState.RUNNING.value)
                .values(published_at=aware_utc(at, "published_at"))
            )

    def claim(self, claim: Claim, broadcast_id: str, fence: Fence | None) -> str:
        """Claim an occurrence for `broadcast_id` under `fence`; the broadcast holding the claim after.

        A claim whose broadcast was never recorded, made under another token, is taken: its claimant
        lost the lease before sending, and its fence now refuses that broadcast.
        """
        with self._db.session(write=True) as s:
            conn = s.connection()
            check_fence(conn, fence)
            if insert_claim(conn, claim, broadcast_id, fence):
                return broadcast_id
            holder, token = held_claim(conn, claim)
            if fence is not None and token != fence.token and s.get(BroadcastRow, holder) is None:
                retake_claim(conn, claim, broadcast_id, fence)
                return broadcast_id
            return holder

    def release(self, claim: Claim, fence: Fence | None) -> None:
        """Drop an occurrence's claim (it was cancelled before it aired)."""
        with self._db.session(write=True) as s:
            check_fence(s.connection(), fence)
            drop_claim(s.connection(), claim)

    def running(self) -> list[BroadcastInfo]:
        """Every broadcast still running, oldest first."""
        query = select(BroadcastRow).where(col(BroadcastRow.state) == BroadcastState.RUNNING.value)
        with self._db.session() as s:
            return [r.info() for r in s.exec(query.order_by(col(BroadcastRow.created_at)))]

    def get(self, broadcast_id: str) -> BroadcastInfo:
        """One broadcast, or NotFound."""
        with self._db.session() as s:
            return get_row(s, BroadcastRow, broadcast_id, "broadcast").info()

    def between(self, since: datetime, until: datetime) -> list[BroadcastInfo]:
        """Broadcasts created in [since, until), oldest first."""
        query = (
            select(BroadcastRow)
            .where(col(BroadcastRow.created_at) >= aware_utc(since, "since"))
            .where(col(BroadcastRow.created_at) < aware_utc(until, "until"))
            .order_by(col(BroadcastRow.created_at), col(BroadcastRow.id))
        )
        with self._db.session() as s:
            return [r.info() for r in s.exec(query)]

    def latest(self, limit: int = 20) -> list[BroadcastInfo]:
        """The newest broadcasts, newest first."""
        order = (col(BroadcastRow.created_at).desc(), col(BroadcastRow.id).desc())
        with self._db.session() as s:
            return [r.info() for r in s.exec(select(BroadcastRow).order_by(*order).limit(limit))]

    def airings(self, bulletin_id: int, limit: int = 50) -> list[Airing]:
        """The newest broadcasts of a bulletin, newest first, with their delivery counts."""
        query = (
            select(BroadcastRow)
            .where(col(BroadcastRow.bulletin_id) == bulletin_id)
            .order_by(col(BroadcastRow.created_at).desc(), col(BroadcastRow.id).desc())
            .limit(limit)
        )
        with self._db.session() as s:
            live_bulletin(s, bulletin_id)
            broadcasts = [r.info() for r in s.exec(query)]
            counts = _delivery_summaries(s, [b.id for b in broadcasts])
        return [Airing(b, *counts.get(b.id, (0, 0, None, None))) for b in broadcasts]


class DeliveryRepository:
    """One broadcast on one device: moved forward only, by the lifecycle in `store.models`."""

    def __init__(self, sessions: Sessions) -> None:
        self._db = sessions

    def apply(self, events: Sequence[DeliveryUpdate]) -> int:
        """Apply device reports in one transaction, forward only; return how many rows changed."""
        # Events naming no delivery are skipped and logged at WARNING.
        if not events:
            return 0
        with self._db.session(write=True) as s:
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
        with self._db.session(write=True) as s:
            get_row(s, BroadcastRow, broadcast_id, "broadcast")
            stmt = (
                update(DeliveryRow)
                .where(col(DeliveryRow.broadcast_id) == broadcast_id)
                .where(col(DeliveryRow.state).not_in([x.value for x in FINAL]))
                .values(state=DeliveryStatus.UNREACHED.value, reason=reason, updated_at=at)
                .execution_options(synchronize_session=False)
            )
            return s.exec(stmt).rowcount

    def note_stopped(self, broadcast_id: str, device_ids: Sequence[str], detail: str) -> int:
        """Replace the detail of these devices' `stopped` deliveries (e.g. that one never confirmed)."""
        with self._db.session(write=True) as s:
            changed = 0
            for chunk in chunks(list(device_ids)):
                stmt = (
                    update(DeliveryRow)
                    .where(col(DeliveryRow.broadcast_id) == broadcast_id)
                    .where(col(DeliveryRow.device_id).in_(chunk))
                    .where(col(DeliveryRow.state) == DeliveryStatus.STOPPED.value)
                    .values(detail=detail)
                    .execution_options(synchronize_session=False)
                )
                changed += s.exec(stmt).rowcount
            return changed

    def open_on(self, device_ids: Sequence[str]) -> dict[str, list[str]]:
        """The running broadcasts with a delivery not yet final on any of `device_ids`: their devices."""
        found: dict[str, list[str]] = defaultdict(list)
        with self._db.session() as s:
            for chunk in chunks(list(device_ids)):
                query = (
                    select(DeliveryRow.broadcast_id, DeliveryRow.device_id)
                    .join(BroadcastRow, col(BroadcastRow.id) == col(DeliveryRow.broadcast_id))
                    .where(col(BroadcastRow.state) == BroadcastState.RUNNING.value)
                    .where(col(DeliveryRow.device_id).in_(chunk))
                    .where(col(DeliveryRow.state).not_in([x.value for x in FINAL]))
                )
                for broadcast_id, device_id in s.exec(query):
                    found[broadcast_id].append(device_id)
        return {b: sorted(d) for b, d in found.items()}

    def of(self, broadcast_id: str) -> list[DeliveryInfo]:
        """Every delivery of a broadcast, by device id."""
        with self._db.session() as s:
            get_row(s, BroadcastRow, broadcast_id, "broadcast")
            query = select(DeliveryRow).where(col(DeliveryRow.broadcast_id) == broadcast_id)
            return [r.info() for r in s.exec(query.order_by(col(DeliveryRow.device_id)))]

    def counts(self, broadcast_id: str) -> dict[str, int]:
        """How many deliveries of a broadcast are in each state (every state listed, maybe 0)."""
        with self._db.session() as s:
            get_row(s, BroadcastRow, broadcast_id, "broadcast")
            query = (
                select(DeliveryRow.state, func.count())
                .where(col(DeliveryRow.broadcast_id) == broadcast_id)
                .group_by(col(DeliveryRow.state))
            )
            counts = {state.value: 0 for state in DeliveryStatus}
            counts.update({state: n for state, n in s.exec(query)})
            return counts

    def totals(self) -> dict[str, int]:
        """How many deliveries, over every broadcast, are in each state."""
        with self._db.session() as s:
            query = select(DeliveryRow.state, func.count()).group_by(col(DeliveryRow.state))
            return {state: n for state, n in s.exec(query)}

    def ended_since(self, since: datetime) -> list[DeliveryInfo]:
        """Deliveries of broadcasts created since `since` that are no longer running, oldest first."""
        with self._db.session() as s:
            query = (
                select(DeliveryRow)
                .join(BroadcastRow, col(BroadcastRow.id) == col(DeliveryRow.broadcast_id))
                .where(col(BroadcastRow.created_at) >= aware_utc(since, "since"))
                .where(col(BroadcastRow.state) != BroadcastState.RUNNING.value)
                .order_by(col(BroadcastRow.created_at), col(DeliveryRow.device_id))
            )
            return [r.info() for r in s.exec(query)]


def _priority(value: int) -> int:
    """A valid priority level as an int."""
    try:
        return int(Priority(value))
    except ValueError as exc:
        raise StoreError(
            f"priority must be 1 (normal), 2 (priority) or 3 (emergency), got {value!r}"
        ) from exc


def _zones_of(s: Session, ids: Sequence[str]) -> dict[str, str]:
    """Where each device hangs now, recorded on its delivery so later remaps leave reports as they were."""
    found: dict[str, str] = {}
    for part in chunks(ids):
        query = select(DeviceRow.id, DeviceRow.zone_id).where(col(DeviceRow.id).in_(part))
        found.update({device_id: zone_id for device_id, zone_id in s.exec(query)})
    return found


def _known_device_ids(s: Session, ids: Sequence[str]) -> set[str]:
    """Which of `ids` name a device."""
    known: set[str] = set()
    for chunk in chunks(ids):
        known.update(s.exec(select(DeviceRow.id).where(col(DeviceRow.id).in_(chunk))))
    return known


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


def _stop_deliveries(
    s: Session, broadcast_id: str, device_ids: Sequence[str], detail: str, at: datetime
) -> None:
    """Mark these devices' open deliveries `stopped`; those already `stopped` by the device get `detail`."""
    for chunk in chunks(list(device_ids)):
        mine = (
            update(DeliveryRow)
            .where(col(DeliveryRow.broadcast_id) == broadcast_id)
            .where(col(DeliveryRow.device_id).in_(chunk))
            .execution_options(synchronize_session=False)
        )
        stopped = DeliveryStatus.STOPPED.value
        s.exec(
            mine.where(col(DeliveryRow.state).not_in([x.value for x in FINAL])).values(
                state=stopped, reason=STOPPED_REASON, detail=detail, updated_at=at, finished_at=at
            )
        )
        s.exec(mine.where(col(DeliveryRow.state) == stopped).values(detail=detail))


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


_Summary = tuple[int, int, datetime | None, datetime | None]


def _delivery_summaries(s: Session, broadcast_ids: list[str]) -> dict[str, _Summary]:
    """Per broadcast: deliveries, how many finished, first start of play, last end."""
    if not broadcast_ids:
        return {}
    finished = func.sum(case((col(DeliveryRow.state) == DeliveryStatus.FINISHED.value, 1), else_=0))
    query = (
        sa_select(
            col(DeliveryRow.broadcast_id),
            func.count(),
            finished,
            func.min(col(DeliveryRow.playing_at)),
            func.max(col(DeliveryRow.finished_at)),
        )
        .where(col(DeliveryRow.broadcast_id).in_(broadcast_ids))
        .group_by(col(DeliveryRow.broadcast_id))
    )
    return {
        bid: (int(total), int(played or 0), _aware(first), _aware(last))
        for bid, total, played, first, last in s.execute(query)
    }


def _aware(value: datetime | None) -> datetime | None:
    """An aggregate's datetime as aware UTC, whatever the driver handed back."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
