"""CAP alerts in the store: a row per message received (unique by sender, identifier, sent) and a row
per broadcast that aired one, so the play log and reports can name the CAP identifier behind an airing."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from datetime import datetime

from sqlalchemy import (
    Column,
    ForeignKey,
    Integer,
    RowMapping,
    String,
    Table,
    UniqueConstraint,
    insert,
    select,
    update,
)
from sqlmodel import SQLModel

from speakerctl.errors import NotFound
from speakerctl.i18n import _
from speakerctl.store.engine import Sessions
from speakerctl.store.tables import UTCDateTime

cap_alerts = Table(
    "cap_alerts",
    SQLModel.metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("sender", String(255), nullable=False),
    Column("identifier", String(255), nullable=False),
    Column("sent", UTCDateTime, nullable=False),
    Column("status", String(16), nullable=False),
    Column("msg_type", String(16), nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    Column("source", String(500), nullable=False, server_default=""),
    Column("language", String(35), nullable=False, server_default=""),
    Column("event", String(255), nullable=False, server_default=""),
    Column("headline", String(500), nullable=False, server_default=""),
    Column("priority", Integer, nullable=False),
    Column("risk_level", Integer, nullable=True),
    Column("targets", String(4000), nullable=False, server_default=""),
    Column("expires", UTCDateTime, nullable=True),
    Column("state", String(16), nullable=False),
    Column("detail", String(500), nullable=False, server_default=""),
    Column("bulletin_id", Integer, nullable=True),
    Column("next_air_at", UTCDateTime, nullable=True),
    Column("items", String(500), nullable=False, server_default=""),
    UniqueConstraint("sender", "identifier", "sent", name="uq_cap_alerts_key"),
)
cap_airings = Table(
    "cap_airings",
    SQLModel.metadata,
    Column("broadcast_id", String(64), primary_key=True),
    Column("alert_id", Integer, ForeignKey("cap_alerts.id"), nullable=False, index=True),
    Column("aired_at", UTCDateTime, nullable=False),
)


@dataclass(frozen=True, slots=True)
class CapRecord:
    """A CAP message as received and what became of it (`state`: see app/cap.py)."""

    sender: str
    identifier: str
    sent: datetime
    status: str
    msg_type: str
    received_at: datetime
    priority: int
    state: str
    source: str = ""
    language: str = ""
    event: str = ""
    headline: str = ""
    risk_level: int | None = None
    targets: tuple[str, ...] = ()
    expires: datetime | None = None
    detail: str = ""
    bulletin_id: int | None = None
    next_air_at: datetime | None = None
    items: tuple[int, ...] = ()
    """The approval items it waits in (queued)."""
    id: int = 0


class CapRepository:
    """CAP messages and their airings."""

    def __init__(self, sessions: Sessions) -> None:
        self._db = sessions

    def add(self, record: CapRecord) -> CapRecord:
        """Store a new message; the record with its id."""
        row = _row(record)
        del row["id"]
        with self._db.begin() as c:
            new_id = c.execute(insert(cap_alerts).values(**row)).inserted_primary_key
        assert new_id is not None
        return _with_id(record, int(new_id[0]))

    def find(self, sender: str, identifier: str, sent: datetime) -> CapRecord | None:
        """The message with this key, if received."""
        t = cap_alerts.c
        query = select(cap_alerts).where(
            (t.sender == sender) & (t.identifier == identifier) & (t.sent == sent)
        )
        with self._db.begin(write=False) as c:
            row = c.execute(query).mappings().first()
        return _record(row) if row else None

    def get(self, alert_id: int) -> CapRecord:
        """One message, or NotFound."""
        with self._db.begin(write=False) as c:
            row = c.execute(select(cap_alerts).where(cap_alerts.c.id == alert_id)).mappings().first()
        if row is None:
            raise NotFound(_("no CAP alert {id}").format(id=alert_id))
        return _record(row)

    def latest(self, limit: int = 100, offset: int = 0) -> list[CapRecord]:
        """The newest messages first (by the time they were received), skipping the first `offset`."""
        query = select(cap_alerts).order_by(cap_alerts.c.received_at.desc(), cap_alerts.c.id.desc())
        with self._db.begin(write=False) as c:
            return [_record(r) for r in c.execute(query.limit(limit).offset(offset)).mappings().all()]

    def in_state(self, state: str) -> list[CapRecord]:
        """Every message in this state, oldest first."""
        query = select(cap_alerts).where(cap_alerts.c.state == state).order_by(cap_alerts.c.id)
        with self._db.begin(write=False) as c:
            return [_record(r) for r in c.execute(query).mappings().all()]

    def settle(
        self,
        alert_id: int,
        state: str,
        detail: str | None = None,
        *,
        next_air_at: datetime | None = None,
        bulletin_id: int | None = None,
    ) -> None:
        """Move a message to `state`, with when it airs next (None: never again)."""
        values: dict[str, object] = {"state": state, "next_air_at": next_air_at}
        if detail is not None:
            values["detail"] = detail[:500]
        if bulletin_id is not None:
            values["bulletin_id"] = bulletin_id
        with self._db.begin() as c:
            c.execute(update(cap_alerts).where(cap_alerts.c.id == alert_id).values(**values))

    def aired(self, alert_id: int, broadcast_id: str, at: datetime) -> None:
        """Link a broadcast to the message it aired."""
        with self._db.begin() as c:
            c.execute(insert(cap_airings).values(broadcast_id=broadcast_id, alert_id=alert_id, aired_at=at))

    def airings(self, alert_id: int) -> list[str]:
        """The broadcasts that aired a message, oldest first."""
        t = cap_airings.c
        query = select(t.broadcast_id).where(t.alert_id == alert_id).order_by(t.aired_at, t.broadcast_id)
        with self._db.begin(write=False) as c:
            return [str(b) for b in c.execute(query).scalars().all()]

    def identifiers(self, broadcast_ids: list[str]) -> dict[str, str]:
        """The CAP identifier behind each of these broadcasts that aired one."""
        if not broadcast_ids:
            return {}
        query = (
            select(cap_airings.c.broadcast_id, cap_alerts.c.identifier)
            .join(cap_alerts, cap_alerts.c.id == cap_airings.c.alert_id)
            .where(cap_airings.c.broadcast_id.in_(broadcast_ids))
        )
        with self._db.begin(write=False) as c:
            return {str(b): str(i) for b, i in c.execute(query).all()}


def _row(record: CapRecord) -> dict[str, object]:
    return asdict(record) | {"targets": " ".join(record.targets), "items": " ".join(map(str, record.items))}


def _with_id(record: CapRecord, new_id: int) -> CapRecord:
    return replace(record, id=new_id)


def _record(row: RowMapping) -> CapRecord:
    values = dict(row)
    values["targets"] = tuple(values["targets"].split())
    values["items"] = tuple(int(i) for i in values["items"].split())
    return CapRecord(**values)
