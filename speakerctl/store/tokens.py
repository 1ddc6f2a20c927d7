"""API tokens: a user's long-lived bearer tokens for the HTTP API, known by the sha256 of the token."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Field, SQLModel, col, select

from speakerctl.errors import NotFound
from speakerctl.store.engine import Sessions
from speakerctl.store.models import aware_utc
from speakerctl.store.tables import UTCDateTime

LABEL_MAX = 64


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """An API token as stored: never the token, only its digest and the prefix shown to people."""

    id: int
    user_id: int
    label: str
    prefix: str
    token_sha256: str
    created_at: datetime
    last_used_at: datetime | None


class ApiTokenRow(SQLModel, table=True):
    """A bearer token of one user."""

    __tablename__ = "api_tokens"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    label: str = Field(default="", max_length=LABEL_MAX)
    prefix: str = Field(max_length=16)
    token_sha256: str = Field(max_length=64, unique=True)
    created_at: datetime = Field(sa_type=UTCDateTime)
    last_used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)

    def info(self) -> TokenInfo:
        """Public value."""
        assert self.id is not None
        return TokenInfo(
            self.id,
            self.user_id,
            self.label,
            self.prefix,
            self.token_sha256,
            self.created_at,
            self.last_used_at,
        )


class TokenRepository:
    """API tokens, by id and by digest."""

    def __init__(self, sessions: Sessions) -> None:
        self._db = sessions

    def add(
        self, user_id: int, label: str, prefix: str, token_sha256: str, created_at: datetime
    ) -> TokenInfo:
        """Record a new token."""
        row = ApiTokenRow(
            user_id=user_id,
            label=label,
            prefix=prefix,
            token_sha256=token_sha256,
            created_at=aware_utc(created_at, "created_at"),
        )
        with self._db.session(write=True) as s:
            s.add(row)
            s.flush()
            return row.info()

    def by_digest(self, token_sha256: str) -> TokenInfo | None:
        """The token with this digest, if any."""
        with self._db.session() as s:
            row = s.exec(select(ApiTokenRow).where(col(ApiTokenRow.token_sha256) == token_sha256)).first()
            return None if row is None else row.info()

    def get(self, token_id: int) -> TokenInfo:
        """One token by id, or NotFound."""
        with self._db.session() as s:
            row = s.get(ApiTokenRow, token_id)
            if row is None:
                raise NotFound(f"no API token {token_id}", hint="see `speakerctl user token list`")
            return row.info()

    def all(self, user_id: int | None = None) -> list[TokenInfo]:
        """Every token (of one user), oldest first."""
        query = select(ApiTokenRow).order_by(col(ApiTokenRow.id))
        if user_id is not None:
            query = query.where(col(ApiTokenRow.user_id) == user_id)
        with self._db.session() as s:
            return [r.info() for r in s.exec(query)]

    def touch(self, token_id: int, at: datetime) -> None:
        """Mark a token used at `at`."""
        with self._db.session(write=True) as s:
            row = s.get(ApiTokenRow, token_id)
            if row is not None:
                row.last_used_at = aware_utc(at, "at")

    def remove(self, token_id: int) -> bool:
        """Revoke a token; whether it existed."""
        with self._db.session(write=True) as s:
            row = s.get(ApiTokenRow, token_id)
            if row is not None:
                s.delete(row)
            return row is not None
