"""The bulletin library in the store: removal, content still in use, where a bulletin has aired.

`LibraryMixin` is mixed into `Store`. A removed bulletin keeps its row (with `removed_at` set) so
the broadcasts that aired it keep their history; it disappears from every bulletin query, its
encodings are forgotten, and `remove_bulletin` returns the content hashes no live bulletin uses
any more, for the caller to delete from the content store.
"""

from __future__ import annotations

from collections.abc import Collection
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import case, func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, delete, select

from speakerctl.errors import InUse, NotFound
from speakerctl.store.models import (
    BroadcastInfo,
    BroadcastState,
    BulletinInfo,
    DeliveryStatus,
    aware_utc,
)
from speakerctl.store.tables import BroadcastRow, BulletinRow, DeliveryRow, VariantRow


@dataclass(frozen=True, slots=True)
class Airing:
    """One broadcast of a bulletin: where it went, when, and how many clusters played it."""

    broadcast: BroadcastInfo
    clusters: int
    played: int
    first_playing_at: datetime | None
    last_finished_at: datetime | None


def live_bulletin(s: Session, bulletin_id: int, *, lock: bool = False) -> BulletinRow:
    """The bulletin row, or NotFound if there is none or it was removed."""
    row = s.get(BulletinRow, bulletin_id, with_for_update=lock)
    if row is None or row.removed_at is not None:
        raise NotFound(f"bulletin {bulletin_id!r} not found", hint="see `speakerctl bulletin list`")
    return row


class LibraryMixin:
    """Bulletin removal and history; needs the `_session` of `Store`."""

    if TYPE_CHECKING:

        def _session(self, *, write: bool = False) -> AbstractContextManager[Session]: ...

    def remove_bulletin(self, bulletin_id: int, removed_at: datetime) -> tuple[BulletinInfo, set[str]]:
        """Remove a bulletin unless a broadcast of it is running: (it, content hashes now unused)."""
        removed_at = aware_utc(removed_at, "removed_at")
        with self._session(write=True) as s:
            row = live_bulletin(s, bulletin_id, lock=True)
            _refuse_if_running(s, bulletin_id)
            hashes = _hashes_of(s, bulletin_id) | {row.sha256}
            s.exec(delete(VariantRow).where(col(VariantRow.bulletin_id) == bulletin_id))
            row.removed_at = removed_at
            s.flush()
            return row.info(), hashes - _referenced(s, hashes)

    def referenced_hashes(self, hashes: Collection[str]) -> set[str]:
        """Which of these content hashes a live bulletin (or one of its encodings) uses."""
        with self._session() as s:
            return _referenced(s, hashes)

    def airings(self, bulletin_id: int, limit: int = 50) -> list[Airing]:
        """The newest broadcasts of a bulletin, newest first, with their delivery counts."""
        query = (
            select(BroadcastRow)
            .where(col(BroadcastRow.bulletin_id) == bulletin_id)
            .order_by(col(BroadcastRow.created_at).desc(), col(BroadcastRow.id).desc())
            .limit(limit)
        )
        with self._session() as s:
            live_bulletin(s, bulletin_id)
            broadcasts = [r.info() for r in s.exec(query)]
            counts = _delivery_summaries(s, [b.id for b in broadcasts])
        return [Airing(b, *counts.get(b.id, (0, 0, None, None))) for b in broadcasts]


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


def _refuse_if_running(s: Session, bulletin_id: int) -> None:
    """InUse if a broadcast of the bulletin is still running."""
    query = (
        select(BroadcastRow.id)
        .where(col(BroadcastRow.bulletin_id) == bulletin_id)
        .where(col(BroadcastRow.state) == BroadcastState.RUNNING.value)
    )
    running = list(s.exec(query.limit(3)))
    if running:
        raise InUse(
            f"bulletin {bulletin_id} is on air (broadcast {', '.join(running)})",
            hint="wait until the broadcast ends, then remove it",
        )


def _hashes_of(s: Session, bulletin_id: int) -> set[str]:
    """The content hashes of a bulletin's encodings."""
    return set(s.exec(select(VariantRow.sha256).where(col(VariantRow.bulletin_id) == bulletin_id)))


def _referenced(s: Session, hashes: Collection[str]) -> set[str]:
    """Which of `hashes` a live bulletin or a recorded encoding uses."""
    if not hashes:
        return set()
    wanted = sorted(hashes)
    primary = select(BulletinRow.sha256).where(col(BulletinRow.sha256).in_(wanted))
    primary = primary.where(col(BulletinRow.removed_at).is_(None))
    encodings = select(VariantRow.sha256).where(col(VariantRow.sha256).in_(wanted))
    return set(s.exec(primary)) | set(s.exec(encodings))


def _aware(value: datetime | None) -> datetime | None:
    """An aggregate's datetime as aware UTC, whatever the driver handed back."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
