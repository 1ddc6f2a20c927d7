"""CAP alerts in the store, on SQLite and PostgreSQL: unique by sender/identifier/sent, states, airings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from speakerctl.errors import NotFound, StoreError
from speakerctl.store import CapRecord, Store

NOW = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)


def _record(identifier: str, **fields: object) -> CapRecord:
    values: dict[str, object] = {
        "sender": "canhbao@nchmf.gov.vn",
        "identifier": identifier,
        "sent": NOW,
        "status": "Actual",
        "msg_type": "Alert",
        "received_at": NOW,
        "priority": 3,
        "state": "airing",
        "targets": ("c1-01", "c2"),
        "expires": NOW + timedelta(hours=1),
        "headline": "Cảnh báo lũ quét" * 31,  # 496 characters, within the column
        "items": (4, 7),
    }
    return CapRecord(**(values | fields))  # type: ignore[arg-type]


def test_alerts_round_trip_and_are_unique(db_url: str) -> None:
    with Store.open(db_url) as store:
        stored = store.cap.add(_record("A1"))
        assert stored.id > 0 and store.cap.get(stored.id) == stored
        assert store.cap.find(stored.sender, "A1", NOW) == stored
        assert store.cap.find(stored.sender, "A1", NOW + timedelta(seconds=1)) is None
        with pytest.raises(StoreError):
            store.cap.add(_record("A1"))
        with pytest.raises(NotFound):
            store.cap.get(stored.id + 100)


def test_states_and_airings(db_url: str) -> None:
    with Store.open(db_url) as store:
        first = store.cap.add(_record("A1"))
        second = store.cap.add(_record("A2", received_at=NOW + timedelta(minutes=1), state="queued"))
        store.cap.settle(first.id, "cancelled", "Cancel by A3", next_air_at=None)
        assert (
            store.cap.get(first.id).state == "cancelled" and store.cap.get(first.id).detail == "Cancel by A3"
        )
        assert [r.identifier for r in store.cap.latest()] == ["A2", "A1"]
        assert [r.id for r in store.cap.in_state("queued")] == [second.id]
        store.cap.aired(first.id, "bc-1", NOW)
        store.cap.aired(first.id, "bc-2", NOW + timedelta(minutes=15))
        assert store.cap.airings(first.id) == ["bc-1", "bc-2"]
        assert store.cap.identifiers(["bc-2", "bc-9"]) == {"bc-2": "A1"}
        assert store.cap.identifiers([]) == {}
