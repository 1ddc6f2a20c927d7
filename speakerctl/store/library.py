"""The bulletin library: bulletins, their encodings, removal and the content still in use.

A removed bulletin keeps its row (with `removed_at` set) so the broadcasts that aired it keep their
history; it disappears from every bulletin query, its encodings are forgotten, and `remove` returns
the content hashes no live bulletin uses any more, for the caller to delete from the content store.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, delete, select

from speakerctl.errors import InUse, NotFound
from speakerctl.i18n import _
from speakerctl.store.engine import Sessions
from speakerctl.store.models import BroadcastState, BulletinInfo, VariantInfo, aware_utc
from speakerctl.store.tables import BroadcastRow, BulletinRow, VariantRow

_LIVE = col(BulletinRow.removed_at).is_(None)


def live_bulletin(s: Session, bulletin_id: int, *, lock: bool = False) -> BulletinRow:
    """The bulletin row, or NotFound if there is none or it was removed."""
    row = s.get(BulletinRow, bulletin_id, with_for_update=lock)
    if row is None or row.removed_at is not None:
        raise NotFound(
            _("bulletin {id!r} not found").format(id=bulletin_id), hint=_("see `speakerctl bulletin list`")
        )
    return row


class BulletinRepository:
    """Imported bulletins and their encodings."""

    def __init__(self, sessions: Sessions) -> None:
        self._db = sessions

    def add(
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
        with self._db.session(write=True) as s:
            s.add(row)
            s.flush()
            assert row.id is not None
            for position, v in enumerate(variants):
                s.add(VariantRow(bulletin_id=row.id, position=position, **_fields(v)))
            return row.info()

    def get(self, bulletin_id: int) -> BulletinInfo:
        """One bulletin, or NotFound (also once removed)."""
        with self._db.session() as s:
            return live_bulletin(s, bulletin_id).info()

    def by_sha(self, sha256: str) -> BulletinInfo | None:
        """The first bulletin with this content hash, if any (removed ones are not)."""
        with self._db.session() as s:
            query = select(BulletinRow).where(BulletinRow.sha256 == sha256, _LIVE)
            row = s.exec(query.order_by(col(BulletinRow.id)).limit(1)).first()
            return row.info() if row else None

    def all(self) -> list[BulletinInfo]:
        """Every bulletin not removed, oldest first."""
        with self._db.session() as s:
            query = select(BulletinRow).where(_LIVE).order_by(col(BulletinRow.id))
            return [r.info() for r in s.exec(query)]

    def variants(self, bulletin_id: int) -> list[VariantInfo]:
        """A bulletin's encodings in order of preference (its primary one if none were recorded)."""
        with self._db.session() as s:
            bulletin = live_bulletin(s, bulletin_id)
            query = select(VariantRow).where(VariantRow.bulletin_id == bulletin_id)
            rows = s.exec(query.order_by(col(VariantRow.position))).all()
            if rows:
                return [r.info() for r in rows]
            b = bulletin.info()
            return [VariantInfo(b.codec, b.container, b.bitrate_kbps, b.sha256, b.size, b.duration_ms)]

    def remove(self, bulletin_id: int, removed_at: datetime) -> tuple[BulletinInfo, set[str]]:
        """Remove a bulletin unless a broadcast of it is running: (it, content hashes now unused)."""
        removed_at = aware_utc(removed_at, "removed_at")
        with self._db.session(write=True) as s:
            row = live_bulletin(s, bulletin_id, lock=True)
            _refuse_if_running(s, bulletin_id)
            hashes = _hashes_of(s, bulletin_id) | {row.sha256}
            s.exec(delete(VariantRow).where(col(VariantRow.bulletin_id) == bulletin_id))
            row.removed_at = removed_at
            s.flush()
            return row.info(), hashes - _referenced(s, hashes)

    def referenced_hashes(self, hashes: Collection[str]) -> set[str]:
        """Which of these content hashes a live bulletin (or one of its encodings) uses."""
        with self._db.session() as s:
            return _referenced(s, hashes)


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


def _fields(value: VariantInfo) -> dict[str, Any]:
    return {name: getattr(value, name) for name in VariantInfo.__dataclass_fields__}
