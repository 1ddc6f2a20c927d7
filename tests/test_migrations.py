"""Alembic migrations on SQLite and PostgreSQL: from empty, and from the schema of main before Alembic."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlmodel import SQLModel

from speakerctl.errors import StoreError
from speakerctl.store import SCHEMA_REVISION, Store, migrate

FIXTURES = Path(__file__).parent / "fixtures"
T0 = datetime(2026, 11, 29, 6, 0, tzinfo=UTC)
BOOK_TABLES = ("speakerctl_schedules", "speakerctl_schedule_runs", "speakerctl_apscheduler_jobs")
MAIN_ROWS = [
    "INSERT INTO schema_version (id, version) VALUES (1, 2)",
    "INSERT INTO zones (id, name, kind, parent_id, position) VALUES ('st', 'Sóc Trăng', 'province', NULL, 0)",
    "INSERT INTO devices (id, name, zone_id, model, network, online, temperature_c)"
    " VALUES ('d1', 'Ấp 1', 'st', 'pa-4g', '4g', TRUE, 41.5)",
    "INSERT INTO bulletins (id, title, sha256, codec, container, bitrate_kbps, duration_ms, size,"
    " source_name, created_at, created_by, profile)"
    " VALUES (1, 'Tin bão', 'ab', 'opus', 'ogg', 24, 1000, 100, 'bao.mp3',"
    " '2026-11-29 06:00:00', 'admin', 'speech')",
    "INSERT INTO broadcasts (id, bulletin_id, priority, targets, created_at, issued_at, expires_at, state)"
    " VALUES ('bc-1', 1, 1, '[\"st\"]', '2026-11-29 06:00:00', '2026-11-29 06:00:00',"
    " '2026-11-29 07:00:00', 'complete')",
    "INSERT INTO deliveries (broadcast_id, device_id, state, detail, cached, updated_at)"
    " VALUES ('bc-1', 'd1', 'finished', '', FALSE, '2026-11-29 06:00:05')",
    "INSERT INTO audit (at, actor, device_id, action, outcome, detail)"
    " VALUES ('2026-11-29 06:00:00', 'admin', 'd1', 'reboot', 'ok', '')",
]
BOOK_ROWS = [
    "INSERT INTO speakerctl_schedules (id, bulletin_id, targets, rule, priority, on_preempt, window_s,"
    " paused, name, revision, created_at) VALUES ('sch-1', 1, '[\"st\"]',"
    ' \'{"v": 1, "kind": "daily", "times": ["05:00"]}\', 1, \'resume\', 900, FALSE, \'Sáng\', 1, NULL)',
    "INSERT INTO speakerctl_schedule_runs (schedule_id, fire_at, state, broadcast_id, detail, recorded_at)"
    " VALUES ('sch-1', '2026-11-28T22:00:00.000000Z', 'aired', 'bc-1', '', '2026-11-28T22:00:01.000000Z')",
]


def _main_database(url: str, *, with_book: bool = True) -> None:
    """A database as today's main made it (its DDL captured in tests/fixtures), with a few rows."""
    Path(sa.make_url(url).database or "").parent.mkdir(parents=True, exist_ok=True)  # SQLite: its dir
    engine = sa.create_engine(url)
    ddl = (FIXTURES / f"main_schema_{engine.dialect.name}.sql").read_text()
    statements = [s.strip() for s in ddl.split(";\n") if s.strip()]
    if not with_book:
        statements = [s for s in statements if not any(t in s for t in BOOK_TABLES)]
    with engine.begin() as conn:
        for sql in [*statements, *MAIN_ROWS, *(BOOK_ROWS if with_book else [])]:
            conn.exec_driver_sql(sql)
    engine.dispose()


def _schema_diff(url: str) -> list[object]:
    """What differs between the database and the store's tables (empty when they match)."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return list(compare_metadata(MigrationContext.configure(conn), SQLModel.metadata))
    finally:
        engine.dispose()


def _tables(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_schema_revision_is_the_newest_script() -> None:
    engine = sa.create_engine("sqlite://")
    with engine.connect() as conn:
        assert ScriptDirectory.from_config(migrate.config(conn)).get_current_head() == SCHEMA_REVISION


def test_an_empty_database_migrates_to_the_models(db_url: str) -> None:
    Store.open(db_url).close()
    assert _schema_diff(db_url) == []
    assert {"alembic_version", *BOOK_TABLES} <= _tables(db_url)
    assert "schema_version" not in _tables(db_url)


def test_a_database_of_main_is_stamped_upgraded_and_keeps_its_rows(db_url: str) -> None:
    _main_database(db_url)
    with Store.open(db_url) as store:
        assert store.devices.get("d1").temperature_c == 41.5
        assert store.bulletins.get(1).title == "Tin bão"
        assert store.broadcasts.get("bc-1").created_at == T0
        assert [d.state for d in store.deliveries.of("bc-1")] == ["finished"]
        assert [e.action for e in store.audit.entries()] == ["reboot"]
        assert store.schedules.get("sch-1").name == "Sáng"
        assert [r.broadcast_id for r in store.schedules.runs("sch-1")] == ["bc-1"]
    assert _schema_diff(db_url) == []
    assert "schema_version" not in _tables(db_url)
    Store.open(db_url).close()  # and it opens again as an Alembic database


def test_a_database_of_main_that_never_ran_the_scheduler_gets_the_book_tables(db_url: str) -> None:
    _main_database(db_url, with_book=False)
    with Store.open(db_url) as store:
        assert store.schedules.all() == []
        assert store.zones.get("st").name == "Sóc Trăng"
    assert _schema_diff(db_url) == []


def test_a_legacy_version_newer_than_main_is_refused(db_url: str) -> None:
    _main_database(db_url)
    engine = sa.create_engine(db_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE schema_version SET version = 3")
    engine.dispose()
    with pytest.raises(StoreError, match="schema version 3") as err:
        Store.open(db_url)
    assert "upgrade speakerctl" in err.value.hint
