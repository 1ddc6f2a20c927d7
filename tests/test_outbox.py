"""The outbox and the event reader in the store, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from speakerctl.app.context import open_store
from speakerctl.config import Settings
from speakerctl.store import (
    AlertFinding,
    BroadcastState,
    DeliveryStatus,
    DeliveryUpdate,
    LiveClusterRecord,
    LiveRecord,
    NewOutboxItem,
    Store,
)

NOW = datetime(2026, 11, 29, 6, 0, tzinfo=UTC)
DEV, OTHER = "st-ke-sach-an-my-01", "st-ke-sach-an-my-02"


@pytest.fixture
def store(db_url: str, tmp_path: Path) -> Iterator[Store]:
    """A store with the inventory loaded."""
    found = open_store(Settings(data_dir=tmp_path / "data", database_url=db_url))
    yield found
    found.close()


def _item(key: str, *, kind: str = "airing", subject: str = "", at: datetime = NOW) -> NewOutboxItem:
    return NewOutboxItem("province:st", kind, key, {"key": key, "tên": "Bản tin"}, at, subject=subject)


def test_items_are_kept_once_per_key_until_delivered(store: Store) -> None:
    assert store.outbox.enqueue([_item("a"), _item("b"), _item("a")], NOW) == 2
    assert store.outbox.enqueue([_item("a")], NOW) == 0
    assert store.outbox.known("province:st", ["a", "z"]) == {"a"}
    first, second = store.outbox.due("province:st", NOW)
    assert first.payload == {"key": "a", "tên": "Bản tin"} and first.attempts == 0
    assert store.outbox.failed(first.id, NOW + timedelta(minutes=1), "502 " * 200) == 1
    assert [i.idempotency_key for i in store.outbox.due("province:st", NOW)] == ["b"]
    store.outbox.delivered(second.id, NOW)
    summary = store.outbox.summary("province:st")
    assert (summary.pending, summary.delivered, summary.oldest_pending) == (1, 1, NOW)
    assert len(summary.last_error) == 500
    (again,) = store.outbox.due("province:st", NOW + timedelta(minutes=1))
    assert again.attempts == 1 and again.next_attempt_at == NOW + timedelta(minutes=1)
    assert store.outbox.latest_event("province:st", "airing") == NOW
    assert store.outbox.latest_event("province:st", "status") is None
    assert (
        store.outbox.prune("province:st", NOW) == 0
        and store.outbox.prune("province:st", NOW + timedelta(1)) == 1
    )
    assert store.outbox.known("province:st", ["a", "b"]) == {
        "a"
    }  # the delivered one forgotten, not the other


def test_a_newer_status_replaces_the_one_not_yet_sent(store: Store) -> None:
    store.outbox.enqueue(
        [_item("s1", kind="status", subject=DEV), _item("t1", kind="status", subject=OTHER)], NOW
    )
    (sent,) = [i for i in store.outbox.due("province:st", NOW) if i.idempotency_key == "t1"]
    store.outbox.delivered(sent.id, NOW)
    later = NOW + timedelta(minutes=5)
    store.outbox.enqueue([_item("s2", kind="status", subject=DEV), _item("t2", kind="status", subject=OTHER)],
                         later, latest_only=True)  # fmt: skip
    keys = [i.idempotency_key for i in store.outbox.items("province:st")]
    assert keys == ["t1", "s2", "t2"]  # s1 superseded; t1 was delivered, so it stays as history


def test_the_reader_finds_airings_relays_finished_broadcasts_and_alerts(store: Store) -> None:
    bulletin = store.bulletins.add(
        "Bản tin", "cd" * 32, "opus", "ogg", 24, 30_000, 90_000, "b.mp3", "lan", NOW
    )
    start = NOW - timedelta(minutes=1)
    store.broadcasts.create("bc-1", bulletin.id, 1, ["st-ke-sach-an-my"], [DEV, OTHER], start, start, NOW)
    t = int(start.timestamp() * 1000)
    store.deliveries.apply(
        [
            DeliveryUpdate("bc-1", DEV, DeliveryStatus.PLAYING, None, "", t + 500),
            DeliveryUpdate("bc-1", DEV, DeliveryStatus.FINISHED, None, "", t + 30_500),
        ]
    )
    store.broadcasts.finish("bc-1", BroadcastState.INCOMPLETE, NOW)
    store.live.begin(LiveRecord("live-1", "http://vov.vn/vov1", "lan", ("st-ke-sach-an-my",), 2, start),
                     [LiveClusterRecord(OTHER)])  # fmt: skip
    store.live.update_cluster(
        "live-1", LiveClusterRecord(OTHER, started_at=start, ended_at=NOW, reason="ended")
    )
    store.alerts.sync([AlertFinding("offline", OTHER, "12 min")], {"offline"}, NOW)

    aired = store.events.airings_since(NOW - timedelta(hours=1))
    assert [(a.airing_id, a.device_id, a.relay) for a in aired] == [
        ("bc-1", DEV, False),
        ("live-1", OTHER, True),
    ]
    assert (
        aired[0].author == "lan"
        and aired[0].duration_ms == 30_000
        and aired[0].started_at == start + timedelta(milliseconds=500)
    )
    assert aired[1].relay_source == "http://vov.vn/vov1" and aired[1].duration_ms == 60_000
    assert store.events.airings_since(NOW - timedelta(hours=1), {DEV})[0].device_id == DEV
    assert store.events.airings_since(NOW + timedelta(seconds=1)) == []
    (finished,) = store.events.finished_broadcasts(NOW - timedelta(hours=1))
    assert (finished.id, finished.title, finished.state) == ("bc-1", "Bản tin", "incomplete")
    (alert,) = store.events.alerts_since(NOW)
    assert (alert.kind, alert.device_id, alert.closed_at) == ("offline", OTHER, None)
