"""Health rules with fixed datetimes, alerts and audit in the store (SQLite and PostgreSQL), reports."""

from __future__ import annotations

import csv
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo as TZ

import pytest
import sqlalchemy as sa
from alembic import command

from speakerctl.app.records import zone_outcome
from speakerctl.controller import health
from speakerctl.controller.fleetview import fleet_snapshot
from speakerctl.controller.health import AlertKind, HealthPolicy
from speakerctl.controller.reports import export, outcome_by_zone, play_log
from speakerctl.fleet import Zone, ZoneKind
from speakerctl.protocol import Link, Power, Status
from speakerctl.store import (
    SCHEMA_REVISION,
    BroadcastState,
    DeliveryInfo,
    DeliveryStatus,
    DeliveryUpdate,
    DeviceInfo,
    DeviceSpec,
    Store,
    migrate,
)

NOW = datetime(2026, 11, 29, 6, 0, tzinfo=UTC)
POLICY = HealthPolicy(
    heartbeat_timeout_s=180, offline_alert_s=600, clock_drift_ms=2000, min_firmware=(0, 1, 0)
)
HCM = TZ("Asia/Ho_Chi_Minh")
ZONES = [
    Zone("st", "Sóc Trăng", ZoneKind.PROVINCE),
    Zone("st-ks", "Kế Sách", ZoneKind.DISTRICT, "st"),
    Zone("st-ks-am", "An Mỹ", ZoneKind.COMMUNE, "st-ks"),
    Zone("st-td", "Trần Đề", ZoneKind.DISTRICT, "st"),
    Zone("st-td-lh", "Lịch Hội Thượng", ZoneKind.COMMUNE, "st-td"),
]
DEVICES = [
    DeviceSpec("am-01", "Ấp Mỹ Hòa", "st-ks-am", "pa-4g", 9.87, 105.93, "4g"),
    DeviceSpec("am-02", "Chợ An Mỹ", "st-ks-am", "pa-wired"),
    DeviceSpec("lh-01", "Ấp Giồng Chát", "st-td-lh", "pa-4g", 9.49, 106.1, "4g"),
]


def device(**changes: object) -> DeviceInfo:
    """A healthy device heard a minute ago, with `changes`."""
    base = DeviceInfo(
        "am-01", "Ấp Mỹ Hòa", "st-ks-am", "pa-4g", None, None, "4g", online=True,
        last_seen=NOW - timedelta(minutes=1), firmware="speakerctl-agent 0.1.0", amplifier="ok",
        power_source="mains", clock_offset_ms=40,
    )  # fmt: skip
    return replace(base, **changes)  # type: ignore[arg-type]


def kinds(d: DeviceInfo, now: datetime = NOW) -> set[str]:
    return {f.kind for f in health.device_findings(d, now, POLICY)}


# -- pure rules -------------------------------------------------------------------------------


def test_a_healthy_device_has_no_findings() -> None:
    assert kinds(device()) == set()


def test_offline_from_the_last_will_or_a_missed_heartbeat_after_the_grace_period() -> None:
    will = device(online=False, last_seen=NOW - timedelta(minutes=5))
    assert not health.is_online(will, NOW, POLICY) and kinds(will) == set()  # not yet 10 minutes
    assert kinds(will, NOW + timedelta(minutes=6)) == {"offline"}
    silent = device(last_seen=NOW - timedelta(minutes=4))  # says online, missed its heartbeats
    assert not health.is_online(silent, NOW, POLICY)
    assert kinds(silent, NOW + timedelta(minutes=7)) == {"offline"}
    finding = health.offline(device(last_seen=NOW - timedelta(hours=3)), NOW, POLICY)
    assert finding is not None and finding.detail == "last heard 3 h 00 min ago"
    assert kinds(device(online=False, last_seen=None)) == {"offline"}


def test_battery_amplifier_clock_and_firmware_rules() -> None:
    assert kinds(device(power_source="battery", battery_pct=41)) == {"on_battery"}
    assert kinds(device(amplifier="fault")) == {"amplifier_fault"}
    assert kinds(device(clock_offset_ms=-2500)) == {"clock_drift"}
    assert kinds(device(clock_offset_ms=2000)) == set()
    assert kinds(device(firmware="speakerctl-agent 0.0.9")) == {"outdated_firmware"}
    assert kinds(device(firmware="vendor-x 1.2")) == set()
    assert health.parse_version("fw 10.2.33-rc1") == (10, 2, 33)


def _delivery(device_id: str, state: str, *, accepted: bool = True, played: bool = False,
              reason: str | None = None, bc: str = "bc-1") -> DeliveryInfo:  # fmt: skip
    return DeliveryInfo(
        bc, device_id, DeliveryStatus(state), reason, "", False, NOW,
        accepted_at=NOW if accepted else None, playing_at=NOW if played else None,
    )  # fmt: skip


def test_failed_to_sound_looks_at_each_devices_latest_accepted_broadcast() -> None:
    found = health.failed_to_sound(
        [
            _delivery("a", "failed", reason="amplifier_fault"),
            _delivery("b", "unreached"),  # accepted, never reported playing
            _delivery("c", "unreached", accepted=False),  # never accepted: offline, not this rule
            _delivery("d", "failed", played=True, reason="preempted"),  # on purpose
            _delivery("e", "failed", reason="playback_error"),
            _delivery("e", "finished", played=True, bc="bc-2"),  # sounded since
        ]
    )
    assert [(f.device_id, f.detail) for f in found] == [
        ("a", "bc-1: failed/amplifier_fault"),
        ("b", "bc-1: unreached"),
    ]


# -- the store --------------------------------------------------------------------------------


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    """A store with two districts and three clusters, on each backend."""
    with Store.open(db_url) as s:
        s.zones.sync(ZONES)
        s.devices.sync(DEVICES)
        yield s


def _status(device_id: str, at: datetime, **changes: object) -> Status:
    base = Status(
        device_id, True, int(at.timestamp() * 1000), firmware="speakerctl-agent 0.1.0", volume=70,
        link=Link("4g", -88), power=Power("mains"), temperature_c=33.5, storage_free_mb=812,
        clock_offset_ms=35,
    )  # fmt: skip
    return replace(base, **changes)  # type: ignore[arg-type]


def test_new_telemetry_is_stored(store: Store) -> None:
    store.statuses.apply([_status("am-01", NOW)], NOW)
    d = store.devices.get("am-01")
    assert (d.temperature_c, d.storage_free_mb, d.clock_offset_ms) == (33.5, 812, 35)


def test_evaluation_opens_and_closes_alerts_idempotently(store: Store) -> None:
    store.statuses.apply(
        [_status("am-01", NOW, power=Power("battery", 55)), _status("am-02", NOW, amplifier="fault")], NOW
    )
    opened, closed = health.evaluate(store, NOW, POLICY)
    assert {(a.kind, a.device_id) for a in opened} == {
        ("on_battery", "am-01"), ("amplifier_fault", "am-02"), ("offline", "lh-01"),
    }  # fmt: skip
    assert closed == []
    assert health.evaluate(store, NOW + timedelta(seconds=30), POLICY) == ([], [])
    later = NOW + timedelta(minutes=1)
    store.statuses.apply([_status("am-01", later)], later)  # mains back
    opened, closed = health.evaluate(store, later, POLICY)
    assert opened == [] and [(a.kind, a.device_id, a.closed_at) for a in closed] == [
        ("on_battery", "am-01", later)
    ]
    assert len(store.alerts.all(open_only=True)) == 2
    assert {a.device_id for a in store.alerts.all(zone_ids=["st-td"])} == {"lh-01"}
    assert {a.kind for a in store.alerts.all(device_id="am-01")} == {"on_battery"}
    assert len(store.alerts.all()) == 3


def test_remote_actions_are_audited(store: Store) -> None:
    store.audit.record("nguyen", "am-01", "set_volume 35", "ok", "rtt 40 ms", NOW)
    store.audit.record(
        "nguyen", "am-02", "reboot", "timeout", "did not acknowledge", NOW + timedelta(seconds=5)
    )
    assert [(a.action, a.outcome) for a in store.audit.entries()] == [
        ("reboot", "timeout"),
        ("set_volume 35", "ok"),
    ]
    assert [a.actor for a in store.audit.entries("am-01")] == ["nguyen"]


def _broadcast(store: Store, at: datetime, outcomes: dict[str, tuple[str, str | None]]) -> str:
    bulletin = store.bulletins.add(
        "Thông báo phòng chống bão", "cd" * 32, "opus", "ogg", 24, 90_000, 200_000, "bao.mp3", "admin", at
    )
    bc = f"bc-{uuid.uuid4().hex[:6]}"
    store.broadcasts.create(bc, bulletin.id, 2, ["st"], list(outcomes), at, at, at + timedelta(hours=1))
    ms = int(at.timestamp() * 1000)
    updates = []
    for dev, (state, reason) in outcomes.items():
        if state in ("finished", "failed"):
            updates.append(DeliveryUpdate(bc, dev, DeliveryStatus.ACCEPTED, None, "", ms + 500))
            updates.append(DeliveryUpdate(bc, dev, DeliveryStatus.PLAYING, None, "", ms + 2_000))
            updates.append(DeliveryUpdate(bc, dev, DeliveryStatus(state), reason, "", ms + 92_000))
    store.deliveries.apply(updates)
    store.deliveries.mark_unreached(bc, at=at + timedelta(minutes=5))
    store.broadcasts.finish(bc, BroadcastState.INCOMPLETE, at + timedelta(minutes=5))
    return bc


def test_broadcast_report_per_district_and_the_play_log(store: Store, tmp_path: Path) -> None:
    bc = _broadcast(
        store,
        NOW,
        {"am-01": ("finished", None), "am-02": ("failed", "amplifier_fault"), "lh-01": ("x", None)},
    )
    zones = {o.name: zone_outcome(o).dump() for o in outcome_by_zone(store, bc)}
    assert zones["Kế Sách"] == {
        "zone": "st-ks", "name": "Kế Sách", "targeted": 2, "reached": 2, "played": 1, "failed": 1,
        "missed": 0, "reasons": {"amplifier_fault": 1},
    }  # fmt: skip
    assert zones["Trần Đề"]["missed"] == 1 and zones["Trần Đề"]["reasons"] == {"timeout": 1}
    rows = play_log(store, NOW - timedelta(hours=1), NOW + timedelta(hours=1), HCM)
    assert [(r["cluster_id"], r["outcome"], r["aired_s"]) for r in rows] == [
        ("am-01", "finished", 90.0),
        ("am-02", "failed/amplifier_fault", 90.0),
    ]
    assert rows[0]["district"] == "Kế Sách" and rows[0]["commune"] == "An Mỹ"
    assert rows[0]["started"] == "2026-11-29 13:00:02"  # local time, UTC+7
    assert play_log(store, NOW, NOW + timedelta(hours=1), HCM, zone_id="st-td") == []
    export(rows, tmp_path / "log.csv", "csv", "Nhật ký phát thanh")
    raw = (tmp_path / "log.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    parsed = list(csv.DictReader(raw.decode("utf-8-sig").splitlines()))
    assert parsed[0]["cluster"] == "Ấp Mỹ Hòa" and parsed[0]["bulletin"] == "Thông báo phòng chống bão"
    export(rows, tmp_path / "log.xlsx", "xlsx", "Nhật ký phát thanh")
    from openpyxl import load_workbook

    sheet = load_workbook(tmp_path / "log.xlsx").active
    assert sheet is not None
    values = [[c.value for c in row] for row in sheet.iter_rows()]
    assert values[0][0] == "Nhật ký phát thanh" and values[1][0] == "date"
    assert "Chợ An Mỹ" in values[3] and "Kế Sách" in values[2]


def test_failed_to_sound_from_the_store_and_the_fleet_snapshot(store: Store) -> None:
    store.statuses.apply([_status(d.id, NOW) for d in DEVICES], NOW)
    _broadcast(
        store,
        NOW - timedelta(minutes=10),
        {"am-01": ("finished", None), "am-02": ("failed", "amplifier_fault")},
    )
    opened, _ = health.evaluate(store, NOW, POLICY)
    assert [(a.kind, a.device_id) for a in opened] == [(AlertKind.FAILED_TO_SOUND, "am-02")]
    snapshot = fleet_snapshot(store, NOW, POLICY)
    root = snapshot.zones[0]
    assert (root.name, root.total, root.online, root.fault) == ("Sóc Trăng", 3, 3, 1)
    assert (root.last_targeted, root.last_reached, root.last_played) == (2, 2, 1)
    assert [z.name for z in snapshot.zones] == ["Sóc Trăng", "Kế Sách", "An Mỹ", "Trần Đề", "Lịch Hội Thượng"]


def test_a_version_1_database_is_migrated(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:  # what speakerctl made before Alembic, at schema version 1
        command.upgrade(migrate.config(conn), "0001")
        conn.exec_driver_sql("DROP TABLE alembic_version")
    engine.dispose()
    with Store.open(url) as s:
        s.zones.sync(ZONES)
        s.devices.sync(DEVICES)
        s.statuses.apply([_status("am-01", NOW)], NOW)
        assert s.devices.get("am-01").storage_free_mb == 812
        assert health.evaluate(s, NOW, POLICY)[0]
        s.bulletins.add("Tin bão", "ab" * 32, "opus", "ogg", 24, 1000, 100, "bao.mp3", "admin", NOW)
    with sa.create_engine(url).connect() as conn:
        assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == SCHEMA_REVISION


def test_metrics_carry_the_fleet_deliveries_and_the_reach_latency(store: Store) -> None:
    from speakerctl.controller.fleetview import reach_latency_s
    from speakerctl.controller.ingest import IngestCounters
    from speakerctl.web import metrics

    store.statuses.apply([_status(d.id, NOW) for d in DEVICES[:2]], NOW)
    _broadcast(store, NOW - timedelta(minutes=10), {"am-01": ("finished", None), "am-02": ("x", None)})
    health.evaluate(store, NOW, POLICY)
    snapshot = fleet_snapshot(store, NOW, POLICY)
    latency = reach_latency_s(store, snapshot.broadcasts[0].broadcast)
    assert latency == 2.0  # playing 2 s after the command
    text = metrics.render(snapshot, store.deliveries.totals(), IngestCounters(statuses=7), 1.5, latency)
    assert {
        ("speakerctl_devices", "online"): 2,
        ("speakerctl_devices", "offline"): 1,
        ("speakerctl_devices_total",): 3,
        ("speakerctl_alerts_open", "offline"): 1,
        ("speakerctl_deliveries", "finished"): 1,
        ("speakerctl_deliveries", "unreached"): 1,
        ("speakerctl_ingested_statuses_total",): 7,
        ("speakerctl_ingest_rate",): 1.5,
        ("speakerctl_broadcast_reach_latency_seconds",): 2,
    }.items() <= _samples(text).items()
    assert "# TYPE speakerctl_ingested_statuses_total counter" in text.splitlines()


def test_metrics_escape_label_values_and_keep_a_registry_of_their_own(store: Store) -> None:
    from prometheus_client import REGISTRY

    from speakerctl.controller.ingest import IngestCounters
    from speakerctl.web import metrics

    snapshot = fleet_snapshot(store, NOW, POLICY)
    odd = 'say "hi"\\now\n'
    text = metrics.render(snapshot, {odd: 4}, IngestCounters(), 0.0, None)
    assert _samples(text)[("speakerctl_deliveries", odd)] == 4
    readings = metrics.Readings(snapshot, {}, IngestCounters(events=2), 0.0, None)
    first, second = metrics.registry(lambda: readings), metrics.registry(lambda: readings)
    assert first.get_sample_value("speakerctl_ingested_events_total") == 2
    assert second.get_sample_value("speakerctl_ingested_events_total") == 2
    assert REGISTRY.get_sample_value("speakerctl_ingested_events_total") is None


def _samples(text: str) -> dict[tuple[str, ...], float]:
    """Every sample of a Prometheus exposition, by name and label values, as Prometheus parses them."""
    from prometheus_client.parser import text_string_to_metric_families

    families = text_string_to_metric_families(text)
    return {(s.name, *s.labels.values()): s.value for f in families for s in f.samples}
