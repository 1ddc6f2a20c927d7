"""Users and their sign-in sessions: argon2 hashes and sha256 digests of tokens, never a secret itself."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, col, delete, select

from speakerctl.errors import NotFound, UsageError
from speakerctl.store.engine import Sessions
from speakerctl.store.models import aware_utc
from speakerctl.store.tables import UTCDateTime

NAME_MAX = 64
"""Longest user name (the audit log and `approved_by` columns hold it)."""


@dataclass(frozen=True, slots=True)
class UserInfo:
    """A user as stored; `zone_id` None: the whole installation."""

    id: int
    name: str
    display_name: str
    role: str
    zone_id: str | None
    password_hash: str
    disabled: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """A sign-in session, known by the sha256 of its token."""

    token_sha256: str
    user_id: int
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime


class UserRow(SQLModel, table=True):
    """A person who signs in."""

    __tablename__ = "users"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=NAME_MAX, unique=True)
    display_name: str = Field(default="", max_length=200)
    role: str = Field(max_length=16)
    zone_id: str | None = Field(default=None, max_length=128)
    password_hash: str = Field(max_length=255)
    disabled: bool = False
    created_at: datetime = Field(sa_type=UTCDateTime)

    def info(self) -> UserInfo:
        """Public value."""
        assert self.id is not None
        return UserInfo(
            self.id,
            self.name,
            self.display_name,
            self.role,
            self.zone_id,
            self.password_hash,
            self.disabled,
            self.created_at,
        )


class SessionRow(SQLModel, table=True):
    """A signed-in session; the token itself is only ever held by the user."""

    __tablename__ = "user_sessions"

    token_sha256: str = Field(primary_key=True, max_length=64)
    user_id: int = Field(foreign_key="users.id", index=True)
    created_at: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime, index=True)
    last_used_at: datetime = Field(sa_type=UTCDateTime)

    def info(self) -> SessionInfo:
        """Public value."""
        return SessionInfo(
            self.token_sha256, self.user_id, self.created_at, self.expires_at, self.last_used_at
        )


def _user(s: Session, name: str) -> UserRow:
    row = s.exec(select(UserRow).where(col(UserRow.name) == name)).first()
    if row is None:
        raise NotFound(f"no user {name!r}", hint="see `speakerctl user list`")
    return row


class UserRepository:
    """Users, by unique name."""

    def __init__(self, sessions: Sessions) -> None:
        self._db = sessions

    def add(
        self,
        name: str,
        role: str,
        zone_id: str | None,
        password_hash: str,
        created_at: datetime,
        display_name: str = "",
    ) -> UserInfo:
        """Insert a user; UsageError if the name is taken."""
        row = UserRow(
            name=name,
            display_name=display_name,
            role=role,
            zone_id=zone_id,
            password_hash=password_hash,
            created_at=aware_utc(created_at, "created_at"),
        )
        try:
            with self._db.session(write=True) as s:
                if s.exec(select(UserRow.id).where(col(UserRow.name) == name)).first() is not None:
                    raise UsageError(f"user {name!r} exists already", hint="pick another name")
                s.add(row)
                s.flush()
                return row.info()
        except IntegrityError as exc:  # a concurrent add of the same name
            raise UsageError(f"user {name!r} exists already", hint="pick another name") from exc

    def get(self, name: str) -> UserInfo:
        """One user by name, or NotFound."""
        with self._db.session() as s:
            return _user(s, name).info()

    def by_id(self, user_id: int) -> UserInfo:
        """One user by id, or NotFound."""
        with self._db.session() as s:
            row = s.get(UserRow, user_id)
            if row is None:
                raise NotFound(f"no user with id {user_id}")
            return row.info()

    def all(self) -> list[UserInfo]:
        """Every user, by name."""
        with self._db.session() as s:
            return [r.info() for r in s.exec(select(UserRow).order_by(col(UserRow.name)))]

    def set_password(self, name: str, password_hash: str) -> UserInfo:
        """Replace a user's password hash."""
        with self._db.session(write=True) as s:
            row = _user(s, name)
            row.password_hash = password_hash
            return row.info()

    def set_disabled(self, name: str, disabled: bool) -> UserInfo:
        """Disable (or enable) a user; disabling ends their sessions."""
        with self._db.session(write=True) as s:
            row = _user(s, name)
            row.disabled = disabled
            if disabled:
                s.exec(delete(SessionRow).where(col(SessionRow.user_id) == row.id))
            return row.info()


class SessionRepository:
    """Sign-in sessions, by token digest."""

    def __init__(self, sessions: Sessions) -> None:
        self._db = sessions

    def add(self, token_sha256: str, user_id: int, created_at: datetime, expires_at: datetime) -> SessionInfo:
        """Record a new session."""
        now = aware_utc(created_at, "created_at")
        row = SessionRow(
            token_sha256=token_sha256,
            user_id=user_id,
            created_at=now,
            expires_at=aware_utc(expires_at, "expires_at"),
            last_used_at=now,
        )
        with self._db.session(write=True) as s:
            s.add(row)
            s.flush()
            return row.info()

    def get(self, token_sha256: str) -> SessionInfo | None:
        """The session with this token digest, if any."""
        with self._db.session() as s:
            row = s.get(SessionRow, token_sha256)
            return None if row is None else row.info()

    def touch(self, token_sha256: str, at: datetime) -> None:
        """Mark a session used now."""
        with self._db.session(write=True) as s:
            row = s.get(SessionRow, token_sha256)
            if row is not None:
                row.last_used_at = aware_utc(at, "at")

    def remove(self, token_sha256: str) -> bool:
        """End a session; whether it existed."""
        with self._db.session(write=True) as s:
            row = s.get(SessionRow, token_sha256)
            if row is not None:
                s.delete(row)
            return row is not None

    def prune(self, before: datetime) -> int:
        """Delete sessions whose absolute expiry is before `before`; how many."""
        with self._db.session(write=True) as s:
            rows = list(
                s.exec(select(SessionRow).where(col(SessionRow.expires_at) < aware_utc(before, "before")))
            )
            for row in rows:
                s.delete(row)
            return len(rows)
