"""Several controllers on one PostgreSQL: leases with fencing tokens, and occurrence claims.

A lease is one row: who holds it, until when (the database's clock, `now()`, never a controller's),
and a token incremented on every acquisition. A write that matters carries the token it was decided
under (a `Fence`); `check_fence` refuses it in the write's own transaction once the token is no longer
current, and locks the lease row so the lease cannot change hands before that transaction commits.
A claim row per (schedule, occurrence) is inserted with ON CONFLICT DO NOTHING: one controller wins.

On SQLite (one controller) nothing here is used: the caller holds a single-process lease instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    Connection,
    DateTime,
    String,
    Table,
    delete,
    func,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import SQLModel

from speakerctl.errors import FencedOut
from speakerctl.i18n import _
from speakerctl.store.engine import Sessions

leases = Table(
    "leases",
    SQLModel.metadata,
    Column("name", String(160), primary_key=True),
    Column("holder", String(128), nullable=False),
    Column("token", BigInteger, nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)
claims = Table(
    "schedule_claims",
    SQLModel.metadata,
    Column("schedule_id", String(32), primary_key=True),
    Column("occurrence_at", String(32), primary_key=True),
    Column("broadcast_id", String(64), nullable=False),
    Column("holder", String(128), nullable=False),
    Column("token", BigInteger, nullable=False),
)
LEADER = "scheduler"
"""The lease whose holder runs the schedule book (APScheduler) and takes over orphaned broadcasts."""
MEMBER_PREFIX = "controller:"
"""A controller's own lease, `controller:<client id>`: its heartbeat, which its broadcasts live by."""

_ACQUIRE = text(
    """
    INSERT INTO leases (name, holder, token, expires_at)
    VALUES (:name, :holder, 1, now() + make_interval(secs => :ttl))
    ON CONFLICT (name) DO UPDATE SET
      token = CASE WHEN leases.holder = EXCLUDED.holder AND leases.expires_at >= now()
                   THEN leases.token ELSE leases.token + 1 END,
      holder = EXCLUDED.holder,
      expires_at = EXCLUDED.expires_at
    WHERE leases.expires_at < now() OR leases.holder = EXCLUDED.holder
    RETURNING token
    """
)
_RELEASE = text("UPDATE leases SET expires_at = now() WHERE name = :name AND holder = :holder")
_FENCE = text(
    "UPDATE leases SET holder = holder"
    " WHERE name = :name AND holder = :holder AND token = :token AND expires_at > now()"
)
_LAPSED = text("SELECT holder FROM leases WHERE name LIKE :prefix AND expires_at < now()")


@dataclass(frozen=True, slots=True)
class Fence:
    """The lease a write was decided under: refused once `token` is not the current one."""

    name: str
    holder: str
    token: int


@dataclass(frozen=True, slots=True)
class Claim:
    """One occurrence of a schedule, claimed for the broadcast that airs it."""

    schedule_id: str
    occurrence_at: datetime


def member_lease(client_id: str) -> str:
    """The name of a controller's own lease."""
    return f"{MEMBER_PREFIX}{client_id}"


class LeaseRepository:
    """Acquire, renew and release leases (PostgreSQL only: the DB clock decides expiry)."""

    def __init__(self, sessions: Sessions) -> None:
        self._db = sessions

    def acquire(self, name: str, holder: str, ttl_s: float) -> int | None:
        """Take or renew the lease for `ttl_s`; its token, or None while another holds it."""
        with self._db.begin() as c:
            row = c.execute(_ACQUIRE, {"name": name, "holder": holder, "ttl": ttl_s}).first()
        return None if row is None else int(row[0])

    def release(self, name: str, holder: str) -> None:
        """Let the lease lapse now (a clean shutdown hands over at once)."""
        with self._db.begin() as c:
            c.execute(_RELEASE, {"name": name, "holder": holder})

    def lapsed_members(self) -> set[str]:
        """Client ids of the controllers whose own lease has lapsed (dead or cut off)."""
        with self._db.begin(write=False) as c:
            rows = c.execute(_LAPSED, {"prefix": f"{MEMBER_PREFIX}%"}).all()
        return {str(r[0]) for r in rows}

    def live_members(self) -> set[str]:
        """Client ids of the controllers whose own lease is still valid."""
        query = text("SELECT holder FROM leases WHERE name LIKE :prefix AND expires_at > now()")
        with self._db.begin(write=False) as c:
            rows = c.execute(query, {"prefix": f"{MEMBER_PREFIX}%"}).all()
        return {str(r[0]) for r in rows}

    def current(self, name: str) -> tuple[str, int] | None:
        """(holder, token) of a lease still valid, else None."""
        query = text("SELECT holder, token FROM leases WHERE name = :name AND expires_at > now()")
        with self._db.begin(write=False) as c:
            row = c.execute(query, {"name": name}).first()
        return None if row is None else (str(row[0]), int(row[1]))


def check_fence(conn: Connection, fence: Fence | None) -> None:
    """FencedOut unless `fence` is the lease's current token (None: a single controller, no lease)."""
    if fence is None:
        return
    params = {"name": fence.name, "holder": fence.holder, "token": fence.token}
    if conn.execute(_FENCE, params).rowcount != 1:
        raise FencedOut(
            _("lease {name} token {token} is no longer {holder}'s: write refused").format(
                name=fence.name, token=fence.token, holder=fence.holder
            ),
            hint=_("another controller took over; this one steps down"),
        )


def lapsed(conn: Connection, client_id: str) -> bool:
    """Whether a controller's own lease exists and has lapsed, read in the caller's transaction."""
    query = (
        select(leases.c.name)
        .where((leases.c.name == member_lease(client_id)) & (leases.c.expires_at < func.now()))
        .with_for_update()
    )
    return conn.execute(query).first() is not None


def insert_claim(conn: Connection, claim: Claim, broadcast_id: str, fence: Fence | None) -> bool:
    """Claim an occurrence for `broadcast_id`; False if it was claimed already (by anyone)."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    values = {
        "schedule_id": claim.schedule_id,
        "occurrence_at": occurrence_key(claim.occurrence_at),
        "broadcast_id": broadcast_id,
        "holder": fence.holder if fence else "",
        "token": fence.token if fence else 0,
    }
    inserted = conn.execute(dialect.insert(claims).values(**values).on_conflict_do_nothing())
    return inserted.rowcount == 1


def claimed_by(conn: Connection, claim: Claim) -> str | None:
    """The broadcast an occurrence was claimed for, if it was (the claim row locked)."""
    query = select(claims.c.broadcast_id).where(_key(claim)).with_for_update()
    found = conn.execute(query).scalar()
    return None if found is None else str(found)


def held_claim(conn: Connection, claim: Claim) -> tuple[str, int]:
    """(broadcast id, token) of an existing claim, its row locked."""
    query = select(claims.c.broadcast_id, claims.c.token).where(_key(claim)).with_for_update()
    row = conn.execute(query).one()
    return str(row[0]), int(row[1])


def retake_claim(conn: Connection, claim: Claim, broadcast_id: str, fence: Fence) -> None:
    """Give a claim to `broadcast_id` under `fence` (its claimant never sent it)."""
    values = {"broadcast_id": broadcast_id, "holder": fence.holder, "token": fence.token}
    conn.execute(update(claims).where(_key(claim)).values(**values))


def drop_claim(conn: Connection, claim: Claim) -> None:
    """Forget a claim."""
    conn.execute(delete(claims).where(_key(claim)))


def _key(claim: Claim) -> ColumnElement[bool]:
    return (claims.c.schedule_id == claim.schedule_id) & (
        claims.c.occurrence_at == occurrence_key(claim.occurrence_at)
    )


def occurrence_key(at: datetime) -> str:
    """An occurrence's time as the claim key: fixed-width UTC text, as the schedule book keeps runs."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
