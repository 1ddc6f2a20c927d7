"""Database failures told in one line with a hint: the kind of failure, never SQL or parameters.

SQLAlchemy's messages carry the statement, its parameters and a link; the operator needs to know
whether the database is locked, unreachable, missing, full or read-only, and what to do about it.
The whole original is logged at debug level (`-v` shows INFO only; set the logger to DEBUG to see it).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from speakerctl.errors import StoreError, StoreUnavailable

log = logging.getLogger(__name__)

_MAX_DETAIL = 120
"""Longest driver message quoted in an unclassified failure."""


@dataclass(frozen=True, slots=True)
class Where:
    """The database a failure happened in, as the hints name it."""

    url: URL

    @property
    def sqlite(self) -> bool:
        """Whether the database is a SQLite file (or in memory)."""
        return self.url.get_backend_name() == "sqlite"

    @property
    def file(self) -> str:
        """The SQLite file."""
        return self.url.database or ":memory:"

    @property
    def server(self) -> str:
        """host:port of the database server."""
        return f"{self.url.host or 'localhost'}:{self.url.port or 5432}"

    def createdb(self) -> str:
        """The command that creates the missing PostgreSQL database."""
        user = f" -U {self.url.username}" if self.url.username else ""
        host = self.url.host or "localhost"
        return f"createdb -h {host} -p {self.url.port or 5432}{user} {self.url.database}"


_Rule = tuple[tuple[str, ...], tuple[str, ...], Callable[[Where], tuple[str, str]]]
"""(SQLSTATE codes, patterns of the driver's message, lower case, (message, hint) for a database)."""

_RULES: list[_Rule] = [
    (
        ("55P03", "40P01", "40001"),
        ("database is locked", "database table is locked", "database is busy"),
        lambda w: ("the database is locked", "is another process writing to it? try again"),
    ),
    (
        ("53100",),
        ("database or disk is full", "no space left on device", "could not extend file"),
        lambda w: (
            "no space left on device for the database",
            f"free space in {Path(w.file).parent}" if w.sqlite else f"free space on the server at {w.server}",
        ),
    ),
    (
        ("25006",),
        ("readonly database", "read-only", "read only"),
        lambda w: (
            "the database is read-only",
            f"check that {w.file} and its directory are writable by this user"
            if w.sqlite
            else "connect to the primary server, not a standby",
        ),
    ),
    (
        ("28P01", "28000"),
        ("authentication failed", "no pg_hba.conf entry", r"role \".*\" does not exist"),
        lambda w: (
            f"the database server at {w.server} refused user {w.url.username or '(default)'!r}",
            "check the user and password in database_url",
        ),
    ),
    (
        ("3D000",),
        (r"database \".*\" does not exist",),
        lambda w: (f"database {w.url.database!r} does not exist", f"create it with {w.createdb()}"),
    ),
    (
        ("57P01", "57P02", "57P03", "08000", "08003", "08006"),
        ("terminating connection", "server closed the connection", "connection already closed"),
        lambda w: (
            f"lost the connection to the database server at {w.server}",
            "was the database dropped or the server restarted? try again",
        ),
    ),
    (
        ("08001",),
        ("connection refused", "could not connect", "could not translate host name", "timeout expired"),
        lambda w: (
            f"cannot reach the database server at {w.server}",
            f"is PostgreSQL running at {w.server}?",
        ),
    ),
    (
        ("42P01", "42703"),
        ("no such table", "no such column", r"relation \".*\" does not exist", r"column .* does not exist"),
        lambda w: (
            "the database's schema does not match this speakerctl",
            "check that database_url names a speakerctl database",
        ),
    ),
    (
        (),
        ("unable to open database file", "file is not a database", r"disk i/o error"),
        lambda w: (
            f"cannot use {w.file} as a database",
            f"check that {w.file} is a speakerctl database on a working, writable disk",
        ),
    ),
]


UNAVAILABLE = (OperationalError, InterfaceError, DisconnectionError, PoolTimeout)
"""Failures of the connection or a lock, not of the statement: the same write may succeed later."""


def translate(exc: Exception, url: URL, *, doing: str = "") -> StoreError:
    """A StoreError naming the kind of failure, with a hint; the original goes to the debug log.

    A lost connection or a lock is `StoreUnavailable` (the ingestor keeps its batch for later); a value
    the driver refuses (SQLite's integer overflow, a NUL for PostgreSQL) is a plain `StoreError`.
    """
    log.debug("database failure", exc_info=exc)
    where = Where(url)
    message, hint = _classify(exc, where)
    prefix = f"{doing}: " if doing else ""
    kind = StoreUnavailable if isinstance(exc, UNAVAILABLE) else StoreError
    return kind(f"{prefix}{message}", hint=hint)


def _classify(exc: Exception, where: Where) -> tuple[str, str]:
    """(message, hint) for a failure; unclassified ones quote the driver's first line only."""
    detail = _driver_message(exc)
    code = _sqlstate(exc)
    lowered = detail.lower()
    for codes, patterns, describe in _RULES:
        if (code and code in codes) or any(re.search(pattern, lowered) for pattern in patterns):
            return describe(where)
    target = where.file if where.sqlite else f"the server at {where.server}"
    return f"database error: {detail[:_MAX_DETAIL]}", f"check {target}; run with -v for details"


def _driver_message(exc: Exception) -> str:
    """The DBAPI's own message (no statement, no parameters), first line only."""
    original = exc.orig if isinstance(exc, DBAPIError) else exc
    text = str(original).strip() or type(original).__name__
    return text.splitlines()[0].strip()


def _sqlstate(exc: Exception) -> str | None:
    """The SQLSTATE of a PostgreSQL error, if the driver gave one."""
    original = exc.orig if isinstance(exc, DBAPIError) else None
    code = getattr(original, "pgcode", None) or getattr(original, "sqlstate", None)
    return code if isinstance(code, str) else None
