"""The one engine factory and the sessions every repository runs in."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import (
    ArgumentError,
    SQLAlchemyError,
)
from sqlalchemy.pool import ConnectionPoolEntry, StaticPool
from sqlmodel import Session

from speakerctl.errors import StoreError
from speakerctl.files import create_private, private_dir
from speakerctl.store.failures import translate

_WRITE = "speakerctl_write"
"""Execution option marking a write session: SQLite then starts it with BEGIN IMMEDIATE."""
BUSY_TIMEOUT_S = 30.0
"""How long a SQLite session waits for another process's write lock before the store says it is locked."""
_URL_HINT = "use e.g. sqlite:///var/lib/speakerctl/speakerctl.db or postgresql+psycopg2://user@host/db"


class Sessions:
    """One engine and the transactions on it; database errors come out as StoreError."""

    def __init__(self, url: str) -> None:
        self.engine, self._serial = open_engine(url)

    @property
    def where(self) -> str:
        """The database URL without its password, for logs and the operator."""
        return self.engine.url.render_as_string(hide_password=True)

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    @contextmanager
    def session(self, *, write: bool = False) -> Iterator[Session]:
        """A Session in one transaction, committed on success if `write`."""
        try:
            with self._serial, Session(self.engine, expire_on_commit=False) as session:
                session.connection(execution_options={_WRITE: write})
                yield session
                if write:
                    session.commit()
        except (SQLAlchemyError, OverflowError, ValueError) as exc:
            raise self.failure(exc) from exc

    @contextmanager
    def begin(self, *, write: bool = True) -> Iterator[Connection]:
        """A Core connection in one transaction, committed on success."""
        try:
            with self._serial, self.engine.connect() as conn:
                conn = conn.execution_options(**{_WRITE: write})
                with conn.begin():
                    yield conn
        except (SQLAlchemyError, OverflowError, ValueError) as exc:
            raise self.failure(exc) from exc

    def failure(self, exc: Exception, *, doing: str = "") -> StoreError:
        """`exc` told as one line with a hint (see store/failures.py)."""
        return translate(exc, self.engine.url, doing=doing)


def open_engine(url: str) -> tuple[Engine, threading.Lock | nullcontext[None]]:
    """The engine for `url`, and the lock serialising its sessions (only for in-memory SQLite)."""
    try:
        parsed = make_url(url)
        if parsed.get_backend_name() != "sqlite":
            return create_engine(parsed, pool_pre_ping=True), nullcontext()
        database = parsed.database or ""
        memory = database in ("", ":memory:") or parsed.query.get("mode") == "memory"
        if not memory and not database.startswith("file:"):
            path = Path(database).expanduser()
            create_private(private_dir(path.parent) / path.name)  # its -wal and -shm take its mode
        extra: dict[str, Any] = {"poolclass": StaticPool} if memory else {}
        engine = create_engine(parsed, connect_args={"timeout": BUSY_TIMEOUT_S}, **extra)
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
        f"busy_timeout={round(BUSY_TIMEOUT_S * 1000)}",
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
