"""The durable outbox: what must reach another system (the province, webhook receivers), kept until it does.

One row per item and channel ("province:<name>", "webhook:<name>"). An item is never lost while the far
end is unreachable: it stays until `delivered`, its attempts and next attempt time kept in the row, so a
restarted controller carries on where it stopped. The idempotency key is unique per channel: enqueueing
the same event twice stores it once, and the receiver gets the key (as `Idempotency-Key`) to drop a
second delivery of an item whose answer was lost.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Index,
    Integer,
    RowMapping,
    String,
    Table,
    Text,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import SQLModel

from speakerctl.store.engine import Sessions
from speakerctl.store.models import aware_utc
from speakerctl.store.tables import UTCDateTime

_CHUNK = 500
"""Items per statement: under every database's limit on bound parameters."""

outbox = Table(
    "outbox",
    SQLModel.metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("channel", String(64), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("idempotency_key", String(200), nullable=False),
    Column("subject", String(64), nullable=False, server_default=""),
    Column("payload", Text, nullable=False),
    Column("event_at", UTCDateTime, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("delivered_at", UTCDateTime, nullable=True),
    Column("last_error", String(500), nullable=False, server_default=""),
    Index("ux_outbox_channel_key", "channel", "idempotency_key", unique=True),
    Index("ix_outbox_due", "channel", "delivered_at", "next_attempt_at"),
)


@dataclass(frozen=True, slots=True)
class NewOutboxItem:
    """Something to deliver: to which channel, what kind, its key, the event's time and its JSON body."""

    channel: str
    kind: str
    idempotency_key: str
    payload: dict[str, Any]
    event_at: datetime
    subject: str = ""
    """What it is about (a device id): a `latest_only` item replaces the undelivered ones of its subject."""


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """An item as stored."""

    id: int
    channel: str
    kind: str
    idempotency_key: str
    subject: str
    payload: dict[str, Any]
    event_at: datetime
    created_at: datetime
    attempts: int
    next_attempt_at: datetime
    delivered_at: datetime | None
    last_error: str


@dataclass(frozen=True, slots=True)
class OutboxSummary:
    """How one channel stands: items waiting, delivered, the oldest waiting and the last error."""

    channel: str
    pending: int
    delivered: int
    oldest_pending: datetime | None
    last_error: str


class OutboxRepository:
    """The outbox: enqueue (once per key), take what is due, record each attempt's outcome."""

    def __init__(self, sessions: Sessions) -> None:
        self._db = sessions

    def enqueue(self, items: Sequence[NewOutboxItem], now: datetime, *, latest_only: bool = False) -> int:
        """Store items not stored yet (by channel and key), due now; how many were new.

        `latest_only`: an item first removes the undelivered items of its channel, kind and subject
        (a cluster's status: only the newest is worth sending after an outage).
        """
        with self._db.begin() as c:
            return enqueue_in(c, items, now, latest_only=latest_only)

    def due(self, channel: str, now: datetime, limit: int = 100) -> list[OutboxItem]:
        """Undelivered items of `channel` whose next attempt is due, oldest first."""
        t = outbox.c
        query = (
            select(outbox)
            .where(t.channel == channel, t.delivered_at.is_(None), t.next_attempt_at <= aware_utc(now, "now"))
            .order_by(t.id)
            .limit(limit)
        )
        with self._db.begin(write=False) as c:
            return [_item(r) for r in c.execute(query).mappings()]

    def delivered(self, item_id: int, at: datetime) -> None:
        """Record that the far end took the item."""
        values = {"delivered_at": aware_utc(at, "at"), "attempts": outbox.c.attempts + 1, "last_error": ""}
        with self._db.begin() as c:
            c.execute(update(outbox).where(outbox.c.id == item_id).values(**values))

    def failed(self, item_id: int, next_attempt_at: datetime, error: str) -> int:
        """Record a failed attempt and when to try again; the attempts made so far."""
        values = {
            "attempts": outbox.c.attempts + 1,
            "next_attempt_at": aware_utc(next_attempt_at, "next_attempt_at"),
            "last_error": error[:500],
        }
        with self._db.begin() as c:
            c.execute(update(outbox).where(outbox.c.id == item_id).values(**values))
            return int(c.execute(select(outbox.c.attempts).where(outbox.c.id == item_id)).scalar_one())

    def prune(self, channel: str, delivered_before: datetime) -> int:
        """Forget items delivered before the given time (long behind any re-read); how many."""
        t = outbox.c
        old = (t.channel == channel) & (t.delivered_at < aware_utc(delivered_before, "delivered_before"))
        with self._db.begin() as c:
            return c.execute(delete(outbox).where(old)).rowcount or 0

    def known(self, channel: str, keys: Sequence[str]) -> set[str]:
        """Which of `keys` a channel already holds (delivered or not)."""
        if not keys:
            return set()
        t = outbox.c
        query = select(t.idempotency_key).where(t.channel == channel, t.idempotency_key.in_(list(keys)))
        with self._db.begin(write=False) as c:
            return set(c.execute(query).scalars())

    def latest_event(self, channel: str, kind: str) -> datetime | None:
        """The newest event time enqueued on a channel for a kind: where collecting events resumes."""
        query = select(func.max(outbox.c.event_at)).where(outbox.c.channel == channel, outbox.c.kind == kind)
        with self._db.begin(write=False) as c:
            found: datetime | None = c.execute(query).scalar()  # max() keeps the column's type
        return found

    def items(self, channel: str, *, pending_only: bool = False, limit: int = 1000) -> list[OutboxItem]:
        """A channel's items, oldest first."""
        query = select(outbox).where(outbox.c.channel == channel)
        if pending_only:
            query = query.where(outbox.c.delivered_at.is_(None))
        with self._db.begin(write=False) as c:
            return [_item(r) for r in c.execute(query.order_by(outbox.c.id).limit(limit)).mappings()]

    def summary(self, channel: str) -> OutboxSummary:
        """Counts, the oldest waiting item and the last error of a channel."""
        t = outbox.c
        waiting = (t.channel == channel) & t.delivered_at.is_(None)
        with self._db.begin(write=False) as c:
            pending, oldest = c.execute(select(func.count(), func.min(t.event_at)).where(waiting)).one()
            done = c.execute(select(func.count()).where(t.channel == channel, t.delivered_at.is_not(None)))
            error = c.execute(
                select(t.last_error).where(waiting, t.last_error != "").order_by(t.id.desc()).limit(1)
            ).scalar()
        return OutboxSummary(channel, int(pending), int(done.scalar_one()), oldest, str(error or ""))


def enqueue_in(
    c: Connection, items: Sequence[NewOutboxItem], now: datetime, *, latest_only: bool = False
) -> int:
    """Enqueue inside the caller's transaction (so an event and its outbox item commit together)."""
    now = aware_utc(now, "now")
    added = 0
    for channel in dict.fromkeys(i.channel for i in items):
        batch = list({i.idempotency_key: i for i in items if i.channel == channel}.values())
        for chunk in range(0, len(batch), _CHUNK):
            added += _enqueue_chunk(c, channel, batch[chunk : chunk + _CHUNK], now, latest_only)
    return added


def _enqueue_chunk(
    c: Connection, channel: str, items: list[NewOutboxItem], now: datetime, latest_only: bool
) -> int:
    if latest_only:
        _drop_superseded(c, channel, items)
    t = outbox.c
    keys = [i.idempotency_key[:200] for i in items]
    held = set(
        c.execute(
            select(t.idempotency_key).where(t.channel == channel, t.idempotency_key.in_(keys))
        ).scalars()
    )
    rows = [_row(i, now) for i, key in zip(items, keys, strict=True) if key not in held]
    if rows:  # ON CONFLICT too: another controller may enqueue the same key at the same moment
        c.execute(_insert_once(c), rows)
    return len(rows)


def _drop_superseded(c: Connection, channel: str, items: list[NewOutboxItem]) -> None:
    """Undelivered items of the same kind and subject as a new one, but another key: replaced."""
    t = outbox.c
    for kind in dict.fromkeys(i.kind for i in items):
        mine = [i for i in items if i.kind == kind]
        c.execute(
            delete(outbox).where(
                t.channel == channel,
                t.kind == kind,
                t.subject.in_([i.subject for i in mine]),
                t.delivered_at.is_(None),
                t.idempotency_key.not_in([i.idempotency_key for i in mine]),
            )
        )


def _insert_once(c: Connection) -> Any:
    """INSERT … ON CONFLICT DO NOTHING on the (channel, key) index, in the database's own dialect."""
    dialect = postgresql if c.dialect.name == "postgresql" else sqlite
    return dialect.insert(outbox).on_conflict_do_nothing(index_elements=["channel", "idempotency_key"])


def _row(item: NewOutboxItem, now: datetime) -> dict[str, Any]:
    return {
        "channel": item.channel[:64],
        "kind": item.kind[:32],
        "idempotency_key": item.idempotency_key[:200],
        "subject": item.subject[:64],
        "payload": json.dumps(item.payload, ensure_ascii=False, sort_keys=True),
        "event_at": aware_utc(item.event_at, "event_at"),
        "created_at": now,
        "next_attempt_at": now,
    }


def _item(row: RowMapping) -> OutboxItem:
    values = dict(row)
    values["payload"] = json.loads(values["payload"])
    return OutboxItem(**values)
