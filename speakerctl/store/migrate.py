"""Schema migrations with Alembic, run at open inside one transaction; no alembic.ini needed."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, inspect, text
from sqlalchemy.exc import SQLAlchemyError

from speakerctl.errors import StoreError
from speakerctl.store.engine import Sessions

SCHEMA_REVISION = "0015"
"""The newest revision in migrations/versions (a test keeps the two equal)."""
SCRIPTS = "speakerctl.store:migrations"
"""The migration scripts (env.py, versions/), shipped inside the package."""
LEGACY_TABLE = "schema_version"
"""Before Alembic the store kept one row here: the schema version, 1 or 2."""
LEGACY_REVISIONS = {1: "0001", 2: "0002"}
"""The revision equal to each legacy schema version: a legacy database is stamped with it, then upgraded."""
_LOCK_KEY = 0x5350_4B52
"""PostgreSQL advisory lock serialising controllers that migrate the same database at once."""


def config(conn: Connection) -> Config:
    """An Alembic config that runs the packaged scripts on `conn`."""
    cfg = Config()
    cfg.set_main_option("script_location", SCRIPTS)
    cfg.attributes["connection"] = conn
    return cfg


def upgrade(sessions: Sessions) -> None:
    """Bring the database to the newest revision; a database from before Alembic is stamped first."""
    try:
        if _at_head(sessions):
            return  # a read transaction: opening an up-to-date store never takes the write lock
        with sessions.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
            cfg = config(conn)
            _check_known(conn, ScriptDirectory.from_config(cfg))
            legacy = _legacy_revision(conn)
            if legacy is not None:
                command.stamp(cfg, legacy)
            command.upgrade(cfg, SCHEMA_REVISION)
    except SQLAlchemyError as exc:
        raise sessions.failure(exc, doing="cannot open the database") from exc
    except CommandError as exc:
        raise StoreError(
            f"cannot open the database: {exc}", hint="check that database_url names a speakerctl database"
        ) from exc


def _at_head(sessions: Sessions) -> bool:
    with sessions.begin(write=False) as conn:
        return current_revision(conn) == SCHEMA_REVISION


def current_revision(conn: Connection) -> str | None:
    """The revision the database is at, None for a new (or legacy) database."""
    return MigrationContext.configure(conn).get_current_revision()


def _check_known(conn: Connection, scripts: ScriptDirectory) -> None:
    """Refuse a database migrated by a newer speakerctl."""
    found = current_revision(conn)
    if found is not None and found not in {s.revision for s in scripts.walk_revisions()}:
        raise StoreError(
            f"the database has schema revision {found!r}, newer than this speakerctl knows",
            hint="upgrade speakerctl to use this database",
        )


def _legacy_revision(conn: Connection) -> str | None:
    """The revision a database made before Alembic is at (None if it is not one)."""
    tables = set(inspect(conn).get_table_names())
    if LEGACY_TABLE not in tables or "alembic_version" in tables:
        return None
    version = conn.execute(text(f"SELECT version FROM {LEGACY_TABLE}")).scalar()
    if version not in LEGACY_REVISIONS:
        known = max(LEGACY_REVISIONS)
        raise StoreError(
            f"the database has schema version {version} but this speakerctl knows only up to {known}",
            hint="upgrade speakerctl to use this database",
        )
    return LEGACY_REVISIONS[version]
