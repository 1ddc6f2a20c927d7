"""The store against a real SQLite file and a real PostgreSQL database (same suite for both)."""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa

from speakerctl.errors import NotFound, StoreError
from speakerctl.fleet import Zone, ZoneKind
from speakerctl.protocol import DeliveryEvent, DeliveryState, Link, Power, Priority, Reason, Status
from speakerctl.protocol.lifecycle import supersedes
from speakerctl.store import (
    SCHEMA_REVISION,
    BroadcastState,
    BulletinInfo,
    DeliveryStatus,
    DeliveryUpdate,
    DeviceSpec,
    Store,
    queries,
)

T0 = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
T0_MS = int(T0.timestamp() * 1000)
SHA = "ab" * 32

ZONES = [
    Zone("st", "Sóc Trăng", ZoneKind.PROVINCE),
    Zone("st-d1", "Mỹ Xuyên", ZoneKind.DISTRICT, "st"),
    Zone("c1", "Hòa Tú 1", ZoneKind.COMMUNE, "st-d1"),
    Zone("c2", "Hòa Tú 2", ZoneKind.COMMUNE, "st-d1"),
    Zone("c3", "Ngọc Tố", ZoneKind.COMMUNE, "st"),
]
DEVICES = [
    DeviceSpec("d1", "Ấp 1", "c1", "pa-4g", 9.5, 105.9, "4g"),
    DeviceSpec("d2", "Ấp 2", "c1", "pa-wired"),
    DeviceSpec("d3", "Ấp 3", "c2", "pa-4g", network="4g"),
    DeviceSpec("d4", "Chợ", "c3", "pa-wired"),
]


# -- fixtures -----------------------------------------------------------------------------------


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    """An open store with the test fleet."""
    with Store.open(db_url) as s:
        s.zones.sync(ZONES)
        s.devices.sync(DEVICES)
        yield s


@pytest.fixture
def bulletin_id(store: Store) -> int:
    """Id of a stored bulletin."""
    return _add_bulletin(store).id


def _add_bulletin(store: Store, sha: str = SHA, created_at: datetime = T0) -> BulletinInfo:
    return store.bulletins.add(
        title="Lịch tiêm phòng",
        sha256=sha,
        codec="opus",
        container="ogg",
        bitrate_kbps=24,
        duration_ms=61_000,
        size=183_000,
        source_name="tiem-phong.mp3",
        created_by="admin",
        created_at=created_at,
    )


def _broadcast(
    store: Store,
    bulletin_id: int,
    bid: str = "b1",
    devices: list[str] | None = None,
    created_at: datetime = T0,
) -> None:
    store.broadcasts.create(
        bid,
        bulletin_id,
        Priority.NORMAL,
        ["c1", "d3"],
        devices or ["d1", "d2", "d3"],
        created_at,
        created_at,
        created_at + timedelta(hours=1),
    )


def _ev(
    state: str,
    device: str = "d1",
    at_s: int = 1,
    reason: str | None = None,
    bid: str = "b1",
    cached: bool = False,
) -> DeliveryUpdate:
    return DeliveryUpdate(bid, device, DeliveryStatus(state), reason, "", T0_MS + at_s * 1000, cached)


def _status(device: str = "d1", at_s: int = 0, online: bool = True, volume: int = 70) -> Status:
    return Status(
        device,
        online,
        T0_MS + at_s * 1000 if at_s >= 0 else 0,
        firmware="1.2.0",
        volume=volume,
        uptime_s=3600,
        link=Link("4g", -71),
        power=Power("battery", 80),
        cached_count=2,
    )


def _raw(url: str, sql: str) -> list[tuple[object, ...]]:
    """Run raw SQL outside the store."""
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            result = conn.exec_driver_sql(sql)
            return [tuple(r) for r in result] if result.returns_rows else []
    finally:
        engine.dispose()


# -- opening ---------------------------------------------------------------------------------


def test_sqlite_file_in_wal_mode_and_parent_created(tmp_path: Path) -> None:
    path = tmp_path / "new" / "dir" / "speakerctl.db"
    Store.open(f"sqlite:///{path}").close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_newer_schema_revision_is_refused(db_url: str) -> None:
    Store.open(db_url).close()
    _raw(db_url, "UPDATE alembic_version SET version_num = '9999'")
    with pytest.raises(StoreError, match="schema revision '9999'") as err:
        Store.open(db_url)
    assert "upgrade speakerctl" in err.value.hint


def test_reopen_keeps_data_and_version(db_url: str) -> None:
    with Store.open(db_url) as s:
        s.zones.sync(ZONES)
    with Store.open(db_url) as s:
        assert len(s.zones.all()) == len(ZONES)
    assert _raw(db_url, "SELECT version_num FROM alembic_version") == [(SCHEMA_REVISION,)]


def test_invalid_url_is_a_store_error_with_hint() -> None:
    with pytest.raises(StoreError, match="cannot use database URL") as err:
        Store.open("not a url")
    assert "sqlite:///" in err.value.hint


def test_unreachable_server_is_a_store_error_with_hint() -> None:
    with pytest.raises(StoreError) as err:
        Store.open("postgresql+psycopg2://u:secret@127.0.0.1:1/x?connect_timeout=2")
    assert err.value.hint == "is PostgreSQL running at 127.0.0.1:1?"
    assert "secret" not in str(err.value)


# -- zones and devices ---------------------------------------------------------------------------


def test_zones_upsert(store: Store) -> None:
    renamed = Zone("c1", "Hòa Tú Một", ZoneKind.COMMUNE, "st-d1")
    store.zones.sync([Zone("c9", "X", ZoneKind.COMMUNE), *ZONES[:2], *ZONES[3:], renamed])
    assert store.zones.get("c1") == Zone("c1", "Hòa Tú Một", ZoneKind.COMMUNE, "st-d1")
    assert [z.id for z in store.zones.all()] == ["c9", "st", "st-d1", "c2", "c3", "c1"]


def test_devices_upsert_keeps_status(store: Store) -> None:
    store.statuses.apply([_status("d1")], T0)
    store.devices.sync(
        [
            DeviceSpec("d1", "Ấp Một", "c2", "pa-4g-v2", 9.6, 106.0, "wifi"),
            DeviceSpec("d9", "Mới", "c3", "pa-wired"),
        ]
    )
    d1 = store.devices.get("d1")
    assert (d1.name, d1.zone_id, d1.model, d1.lat, d1.lon, d1.network) == (
        "Ấp Một",
        "c2",
        "pa-4g-v2",
        9.6,
        106.0,
        "wifi",
    )
    assert d1.online and d1.volume == 70 and d1.last_seen == T0
    assert store.devices.get("d9").online is False
    assert store.devices.get("d9").last_seen is None


def test_device_in_unknown_zone_is_refused(store: Store) -> None:
    with pytest.raises(NotFound, match="zone 'zz' of device 'd8' not found"):
        store.devices.sync([DeviceSpec("d8", "X", "zz", "m")])
    with pytest.raises(NotFound):
        store.devices.get("d8")


def test_not_found_names_the_id(store: Store) -> None:
    with pytest.raises(NotFound, match="zone 'nope' not found"):
        store.zones.get("nope")
    with pytest.raises(NotFound, match="device 'nope' not found"):
        store.devices.get("nope")
    with pytest.raises(NotFound, match="bulletin 42 not found"):
        store.bulletins.get(42)
    with pytest.raises(NotFound, match="broadcast 'nope' not found"):
        store.broadcasts.get("nope")
    with pytest.raises(NotFound, match="broadcast 'nope' not found"):
        store.deliveries.of("nope")
    with pytest.raises(NotFound, match="zone 'nope' not found"):
        store.devices.ids_in(["c1", "nope"])


def test_devices_by_zone_subtree_and_online(store: Store) -> None:
    assert store.devices.ids_in(["st-d1"]) == ["d1", "d2", "d3"]
    assert store.devices.ids_in(["c2", "c3"]) == ["d3", "d4"]
    assert [d.id for d in store.devices.all()] == ["d1", "d2", "d3", "d4"]
    assert [d.id for d in store.devices.all(zone_ids=["c1"])] == ["d1", "d2"]
    store.statuses.apply([_status("d2"), _status("d4")], T0)
    assert [d.id for d in store.devices.all(online=True)] == ["d2", "d4"]
    assert [d.id for d in store.devices.all(zone_ids=["st-d1"], online=False)] == ["d1", "d3"]


# -- bulletins -------------------------------------------------------------------------------


def test_bulletins(store: Store) -> None:
    hanoi = timezone(timedelta(hours=7))
    first = _add_bulletin(store, created_at=T0.astimezone(hanoi))
    second = store.bulletins.add("B", "cd" * 32, "mp3", "mp3", 32, 1000, 4000, "b.wav", "op", T0)
    assert store.bulletins.get(first.id) == first
    assert first.created_at == T0 and first.created_at.tzinfo is UTC
    assert store.bulletins.by_sha(SHA) == first
    assert store.bulletins.by_sha("ef" * 32) is None
    assert store.bulletins.all() == [first, second]


def test_naive_datetimes_are_refused(store: Store) -> None:
    with pytest.raises(StoreError, match="timezone-aware"):
        _add_bulletin(store, created_at=datetime(2024, 5, 1))


# -- broadcasts and deliveries ---------------------------------------------------------------------


def test_create_broadcast(store: Store, bulletin_id: int) -> None:
    _broadcast(store, bulletin_id)
    b = store.broadcasts.get("b1")
    assert (b.bulletin_id, b.priority, b.targets, b.state) == (
        bulletin_id,
        Priority.NORMAL,
        ("c1", "d3"),
        BroadcastState.RUNNING,
    )
    assert b.expires_at == T0 + timedelta(hours=1) and b.completed_at is None
    deliveries = store.deliveries.of("b1")
    assert [(d.device_id, d.state) for d in deliveries] == [
        ("d1", DeliveryStatus.PENDING),
        ("d2", DeliveryStatus.PENDING),
        ("d3", DeliveryStatus.PENDING),
    ]
    assert deliveries[0].updated_at == T0 and deliveries[0].accepted_at is None


def test_create_broadcast_is_all_or_nothing(store: Store, bulletin_id: int) -> None:
    with pytest.raises(NotFound, match=r"device.*'zz'"):
        _broadcast(store, bulletin_id, devices=["d1", "zz"])
    with pytest.raises(NotFound):
        store.broadcasts.get("b1")
    with pytest.raises(NotFound, match="bulletin 999"):
        _broadcast(store, 999)
    with pytest.raises(StoreError, match="priority"):
        store.broadcasts.create("b2", bulletin_id, 7, [], ["d1"], T0, T0, T0)
    _broadcast(store, bulletin_id)
    with pytest.raises(StoreError, match="already exists"):
        _broadcast(store, bulletin_id)


def test_transitions_move_forward_only(store: Store, bulletin_id: int) -> None:
    _broadcast(store, bulletin_id)
    assert store.deliveries.apply([_ev("accepted", at_s=1), _ev("playing", at_s=3)]) == 1
    assert store.deliveries.apply([_ev("content_ready", at_s=2)]) == 0
    d1 = store.deliveries.of("b1")[0]
    assert d1.state is DeliveryStatus.PLAYING
    assert (d1.accepted_at, d1.content_ready_at, d1.playing_at) == (
        T0 + timedelta(seconds=1),
        None,
        T0 + timedelta(seconds=3),
    )
    assert d1.updated_at == T0 + timedelta(seconds=3)


def test_duplicate_events_are_idempotent(store: Store, bulletin_id: int) -> None:
    _broadcast(store, bulletin_id)
    assert store.deliveries.apply([_ev("accepted", cached=True)]) == 1
    assert store.deliveries.apply([_ev("accepted", at_s=9)]) == 0
    d1 = store.deliveries.of("b1")[0]
    assert d1.accepted_at == T0 + timedelta(seconds=1) and d1.cached


def test_final_state_is_sticky(store: Store, bulletin_id: int) -> None:
    _broadcast(store, bulletin_id)
    assert store.deliveries.apply([_ev("finished", at_s=5)]) == 1
    assert store.deliveries.apply([_ev("playing", at_s=6), _ev("failed", at_s=7, reason="stopped")]) == 0
    d1 = store.deliveries.of("b1")[0]
    assert (d1.state, d1.reason, d1.finished_at) == (DeliveryStatus.FINISHED, None, T0 + timedelta(seconds=5))


def test_mark_unreached_then_late_final_report(store: Store, bulletin_id: int) -> None:
    _broadcast(store, bulletin_id)
    store.deliveries.apply([_ev("finished", "d1"), _ev("playing", "d2")])
    assert store.deliveries.mark_unreached("b1", at=T0 + timedelta(minutes=5)) == 2
    assert store.deliveries.mark_unreached("b1") == 0
    counts = store.deliveries.counts("b1")
    assert (counts["finished"], counts["unreached"], counts["pending"]) == (1, 2, 0)
    d2 = store.deliveries.of("b1")[1]
    assert (d2.state, d2.reason, d2.updated_at) == (
        DeliveryStatus.UNREACHED,
        "timeout",
        T0 + timedelta(minutes=5),
    )
    assert store.deliveries.apply([_ev("playing", "d2", at_s=400)]) == 0
    late = _ev("failed", "d2", at_s=401, reason="amplifier_fault")
    assert store.deliveries.apply([late]) == 1
    d2 = store.deliveries.of("b1")[1]
    assert (d2.state, d2.reason) == (DeliveryStatus.FAILED, "amplifier_fault")
    assert d2.finished_at == T0 + timedelta(seconds=401)


def test_delivery_counts_list_every_state(store: Store, bulletin_id: int) -> None:
    _broadcast(store, bulletin_id)
    store.deliveries.apply([_ev("accepted", "d1"), _ev("expired", "d2", reason="expired")])
    counts = store.deliveries.counts("b1")
    assert set(counts) == {s.value for s in DeliveryStatus}
    assert {k: v for k, v in counts.items() if v} == {"pending": 1, "accepted": 1, "expired": 1}


def test_events_for_unknown_deliveries_are_skipped_and_logged(
    store: Store, bulletin_id: int, caplog: pytest.LogCaptureFixture
) -> None:
    _broadcast(store, bulletin_id)
    with caplog.at_level(logging.WARNING, logger="speakerctl.store"):
        changed = store.deliveries.apply([_ev("accepted", "d4"), _ev("accepted", bid="bx"), _ev("accepted")])
    assert changed == 1
    assert "skipped 2 delivery events" in caplog.text and "b1/d4" in caplog.text


def test_finish_broadcast_and_listing(store: Store, bulletin_id: int) -> None:
    _broadcast(store, bulletin_id, "b1")
    _broadcast(store, bulletin_id, "b2", created_at=T0 + timedelta(minutes=1))
    done = store.broadcasts.finish("b1", BroadcastState.COMPLETE, T0 + timedelta(minutes=2))
    assert (done.state, done.completed_at) == (BroadcastState.COMPLETE, T0 + timedelta(minutes=2))
    again = store.broadcasts.finish("b1", BroadcastState.CANCELLED, T0 + timedelta(minutes=3))
    assert again == done
    assert [b.id for b in store.broadcasts.latest()] == ["b2", "b1"]
    assert [b.id for b in store.broadcasts.latest(limit=1)] == ["b2"]


def test_delivery_update_validates_and_maps_events() -> None:
    with pytest.raises(StoreError, match="cannot report"):
        _ev("unreached")
    event = DeliveryEvent("m1", "d1", T0_MS, "b1", DeliveryState.FAILED, Reason.STORAGE_FULL, "disk")
    update = DeliveryUpdate.from_event(event)
    assert (update.state, update.reason, update.detail, update.at) == (
        DeliveryStatus.FAILED,
        "storage_full",
        "disk",
        T0,
    )
    assert supersedes(DeliveryStatus.EXPIRED, DeliveryStatus.UNREACHED)
    assert not supersedes(DeliveryStatus.UNREACHED, DeliveryStatus.FINISHED)


# -- device status ----------------------------------------------------------------------------------


def test_status_updates_latest_fields(store: Store) -> None:
    assert store.statuses.apply([_status("d1", at_s=10)], T0 + timedelta(seconds=11)) == []
    d1 = store.devices.get("d1")
    assert (d1.online, d1.firmware, d1.volume, d1.amplifier) == (True, "1.2.0", 70, "ok")
    assert (d1.power_source, d1.battery_pct, d1.link_network, d1.rssi_dbm) == ("battery", 80, "4g", -71)
    assert (d1.uptime_s, d1.cached_count) == (3600, 2)
    assert d1.status_ts == T0 + timedelta(seconds=10)
    assert d1.last_seen == T0 + timedelta(seconds=11)


def test_stale_status_is_ignored_but_last_will_applies(store: Store) -> None:
    store.statuses.apply([_status("d1", at_s=10, volume=50)], T0)
    store.statuses.apply([_status("d1", at_s=5, volume=90)], T0 + timedelta(seconds=20))
    d1 = store.devices.get("d1")
    assert (d1.volume, d1.last_seen) == (50, T0)
    store.statuses.apply([Status("d1", online=False, ts_ms=0)], T0 + timedelta(seconds=30))
    d1 = store.devices.get("d1")
    assert not d1.online and d1.volume == 50 and d1.status_ts == T0 + timedelta(seconds=10)
    assert d1.last_seen == T0  # a Last Will is the broker's word, not a sighting of the device
    assert [r.online for r in store.statuses.history("d1")] == [False, True]


def test_unknown_devices_are_reported(store: Store) -> None:
    unknown = store.statuses.apply([_status("zz"), _status("d1"), _status("zz"), _status("yy")], T0)
    assert unknown == ["zz", "yy"]
    assert store.devices.get("d1").online


def test_status_history_newest_first(store: Store) -> None:
    store.statuses.apply([_status("d1", at_s=i, volume=i) for i in range(3)], T0)
    records = store.statuses.history("d1", limit=2)
    assert [r.status.volume for r in records] == [2, 1]
    assert records[0].received_at == T0 and records[0].status == _status("d1", at_s=2, volume=2)
    with pytest.raises(NotFound):
        store.statuses.history("zz")


def test_status_history_is_bounded(db_url: str) -> None:
    with Store.open(db_url, history_limit=5, prune_every=3) as s:
        s.zones.sync(ZONES)
        s.devices.sync(DEVICES)
        for i in range(10):
            s.statuses.apply([_status("d1", at_s=i, volume=i), _status("d2", at_s=i)], T0)
            count = _raw(db_url, "SELECT COUNT(*) FROM status_history WHERE device_id = 'd1'")[0][0]
            assert isinstance(count, int) and count <= 5 + 3 - 1
        assert count == 5  # trimmed on the first insert, then every third
        assert [r.status.volume for r in s.statuses.history("d1", limit=50)] == [9, 8, 7, 6, 5]


def test_a_batch_larger_than_a_write_page_updates_every_device_and_keeps_the_inventory(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Both write the device rows in pages of INSERT … ON CONFLICT DO UPDATE: PostgreSQL 1,000 rows a
    # page, SQLite as many as its bound-parameter limit takes (cut here to 47 rows, and 250 history rows).
    monkeypatch.setattr(queries, "SQLITE_MAX_PARAMS", 1_000)
    many = [DeviceSpec(f"m{i:04d}", f"Loa {i}", "c2", "pa-4g", 9.5, 105.9, "4g") for i in range(1_500)]
    store.devices.sync(many)
    first = [_status(d.id, at_s=1, volume=i % 100) for i, d in enumerate(many)]
    assert store.statuses.apply([*first, _status("m0001", at_s=2, volume=99)], T0) == []
    got = {d.id: d for d in store.devices.all(["c2"])}
    assert [got[d.id].volume for d in many[:3]] == [0, 99, 2] and got["m1499"].volume == 1499 % 100
    assert (got["m0007"].name, got["m0007"].zone_id, got["m0007"].lat, got["m0007"].network) == (
        "Loa 7",
        "c2",
        9.5,
        "4g",
    )
    assert got["m1499"].last_seen == T0 and got["m1499"].status_ts == T0 + timedelta(seconds=1)
    assert got["m0001"] == store.devices.get("m0001")  # the fleet's bulk read and the one-row read agree
    assert [r.status for r in store.statuses.history("m0777")] == [first[777]]
    assert store.statuses.apply(first, T0 + timedelta(seconds=5)) == []  # redelivered or stale: no row
    assert len(store.statuses.history("m0001", limit=50)) == 2


# -- concurrency -------------------------------------------------------------------------------------


def test_concurrent_writers_do_not_fail(store: Store, bulletin_id: int) -> None:
    _broadcast(store, bulletin_id)
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(10):
                store.deliveries.apply([_ev("accepted", "d1", at_s=i), _ev("playing", "d2", at_s=i)])
                store.statuses.apply([_status("d3", at_s=n * 100 + i)], T0)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert store.devices.get("d3").status_ts == T0 + timedelta(seconds=309)


def test_execute_many_on_sqlite_stores_what_sqlalchemy_would(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Datetimes converted once per value, unhashable JSON values one by one, a per-row default left
    # to SQLAlchemy, and pages of one statement each (cut to 3 rows here).
    monkeypatch.setattr(queries, "SQLITE_MAX_PARAMS", 12)
    meta = sa.MetaData()
    table = sa.Table(
        "t",
        meta,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("at", sa.DateTime),
        sa.Column("tags", sa.JSON),
        sa.Column("kind", sa.String, default="plain"),
    )
    made = sa.Table(
        "m",
        meta,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("n", sa.Integer, default=lambda: 7),
    )
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'q.db'}")
    meta.create_all(engine)
    rows = [{"id": i, "at": T0.replace(tzinfo=None), "tags": [i, "x"]} for i in range(10)]
    with engine.begin() as conn:
        queries.execute_many(conn, table.insert(), rows)
        queries.execute_many(conn, made.insert(), [{"id": 1}, {"id": 2}])
    with engine.connect() as conn:
        got = [tuple(r) for r in conn.execute(sa.select(table).order_by(table.c.id))]
        assert got == [(i, T0.replace(tzinfo=None), [i, "x"], "plain") for i in range(10)]
        assert [tuple(r) for r in conn.execute(sa.select(made))] == [(1, 7), (2, 7)]
    engine.dispose()
