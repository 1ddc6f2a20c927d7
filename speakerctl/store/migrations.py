"""Schema migrations, one function per version step; run inside the opening transaction."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Column, inspect, text
from sqlalchemy.engine import Connection, Dialect
from sqlmodel import SQLModel

from speakerctl.store.tables import SchemaVersionRow


def _literal(value: object) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def _column_ddl(column: Column[object], dialect: Dialect) -> str:
    """`name TYPE [DEFAULT x NOT NULL]`: a column an existing table can take (nullable without a default)."""
    ddl = f"{column.name} {column.type.compile(dialect=dialect)}"
    default = column.default
    if default is not None and getattr(default, "is_scalar", False):
        ddl += f" DEFAULT {_literal(default.arg)}"  # type: ignore[attr-defined]
        if not column.nullable:
            ddl += " NOT NULL"
    return ddl


def add_missing_columns(conn: Connection) -> None:
    """Add every column the tables declare but the database lacks (additive changes only)."""
    found = inspect(conn)
    for table in SQLModel.metadata.sorted_tables:
        if not found.has_table(table.name):
            continue  # create_all has just made it, complete
        have = {c["name"] for c in found.get_columns(table.name)}
        for column in table.columns:
            if column.name not in have:
                conn.execute(text(f"ALTER TABLE {table.name} ADD COLUMN {_column_ddl(column, conn.dialect)}"))


def _v1_to_v2(conn: Connection) -> None:
    """devices.temperature_c, storage_free_mb, clock_offset_ms (alerts and audit come from create_all)."""
    add_missing_columns(conn)


STEPS: dict[int, Callable[[Connection], None]] = {1: _v1_to_v2}
"""From version N to N + 1."""


def migrate(conn: Connection, found: int, target: int) -> None:
    """Bring a database at version `found` up to `target`, step by step, and record it."""
    for version in range(found, target):
        STEPS[version](conn)
    if found < target:
        conn.execute(SchemaVersionRow.__table__.update().values(version=target))  # type: ignore[attr-defined]
