"""Query helpers the repositories share: rows by key, in chunks, and zone subtrees."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from typing import TypeVar

from sqlmodel import Session, SQLModel, col, select

from speakerctl.errors import NotFound
from speakerctl.i18n import _
from speakerctl.store.models import zone_subtree
from speakerctl.store.tables import ZoneRow

_Row = TypeVar("_Row", bound=SQLModel)
_IN_CHUNK = 5000


def get_row(s: Session, table: type[_Row], key: str | int, what: str, *, lock: bool = False) -> _Row:
    """The row of `table` with primary key `key`, or NotFound."""
    row = s.get(table, key, with_for_update=lock)
    if row is None:
        raise NotFound(_("{what} {key!r} not found").format(what=_(what), key=key))  # "device", "zone"…
    return row


def rows_by_id(s: Session, table: type[_Row], ids: Collection[str], *, lock: bool = False) -> dict[str, _Row]:
    """Rows of `table` whose `id` is in `ids`, by id (locked for update if `lock`)."""
    id_col = col(table.id)  # type: ignore[attr-defined]
    found: dict[str, _Row] = {}
    for chunk in chunks(sorted(ids)):
        query = select(table).where(id_col.in_(chunk)).order_by(id_col)
        found.update((r.id, r) for r in s.exec(query.with_for_update() if lock else query))  # type: ignore[attr-defined]
    return found


def chunks(ids: Sequence[str]) -> Iterator[Sequence[str]]:
    """`ids` in slices small enough for any database's limit on bound parameters."""
    for start in range(0, len(ids), _IN_CHUNK):
        yield ids[start : start + _IN_CHUNK]


def subtree(s: Session, zone_ids: Collection[str]) -> frozenset[str]:
    """`zone_ids` and every zone below them; NotFound for an unknown zone."""
    return zone_subtree((r.info() for r in s.exec(select(ZoneRow))), zone_ids)
