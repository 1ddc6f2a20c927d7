"""A value the validator accepts never breaks the store or the controller (issue 14 §1)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa
from conftest import PG_ADMIN_URL
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from speakerctl.app import fleet, reports
from speakerctl.app.context import AppContext, open_store
from speakerctl.broker.link import Incoming
from speakerctl.clock import FixedClock, from_ms, to_ms
from speakerctl.config import Settings
from speakerctl.controller import monitor
from speakerctl.controller.health import HealthPolicy, evaluate
from speakerctl.controller.ingest import Ingestor
from speakerctl.controller.planning import Plan
from speakerctl.controller.service import Controller
from speakerctl.errors import StoreUnavailable
from speakerctl.logs import Throttled
from speakerctl.protocol import (
    Ack,
    Command,
    ContentRef,
    DeliveryEvent,
    DeliveryState,
    Link,
    Play,
    Power,
    Priority,
    Reason,
    Status,
    codec,
    topics,
)
from speakerctl.protocol.lifecycle import ACCEPTED, CONTENT_READY, FINISHED, PLAYING, REPORTED
from speakerctl.protocol.limits import (
    FUTURE_TOLERANCE_MS,
    MAX_CACHED_LISTED,
    MAX_CLOCK_OFFSET_MS,
    MAX_COUNT,
    MAX_PERCENT,
    MAX_PROTOCOL_REPORTED,
    MAX_RSSI_DBM,
    MAX_STORAGE_FREE_MB,
    MAX_TEMPERATURE_C,
    MAX_TEXT_LENGTH,
    MAX_TIMESTAMP_MS,
    MAX_UPTIME_S,
    MIN_RSSI_DBM,
    MIN_TEMPERATURE_C,
)
from speakerctl.protocol.messages import AMPLIFIER_STATES, NETWORKS, POWER_SOURCES
from speakerctl.store import Store, engine, utc_from_ms
from speakerctl.web import WebServer

NOW = datetime(2026, 11, 29, 6, 0, tzinfo=UTC)
REPORTED_IN_ORDER = (ACCEPTED, CONTENT_READY, PLAYING, FINISHED)
BROADCAST = "bc-bounds"


@dataclass
class Env:
    """A store holding the demo fleet and one broadcast to all of it, an ingestor on a fixed clock."""

    settings: Settings
    store: Store
    clock: FixedClock
    ingestor: Ingestor
    devices: list[str]

    @property
    def ctx(self) -> AppContext:
        """The application context the CLI would build."""
        return AppContext(self.settings, self.clock)

    async def status(self, device_id: str, **fields: Any) -> None:
        """Hand the ingestor a status message of `device_id` with these wire fields."""
        wire = {"v": 1, "device_id": device_id, "online": True, "ts": to_ms(self.clock.now())} | fields
        await self.ingestor.handle(Incoming(topics.device_status(device_id), json.dumps(wire).encode()))

    async def event(self, device_id: str, **fields: Any) -> None:
        """Hand the ingestor a delivery event of `device_id` with these wire fields."""
        wire = {
            "v": 1,
            "kind": "delivery",
            "id": f"e-{device_id}-{self.ingestor.counters.events}",
            "device_id": device_id,
            "ts": to_ms(self.clock.now()),
            "broadcast_id": BROADCAST,
            "state": "accepted",
        } | fields
        await self.ingestor.handle(Incoming(topics.device_events(device_id), json.dumps(wire).encode()))


@pytest.fixture
def env(db_url: str, tmp_path: Path) -> Iterator[Env]:
    settings = Settings(data_dir=tmp_path / "data", database_url=db_url)
    store = open_store(settings)
    devices = [d.id for d in store.devices.all()]
    bulletin = store.bulletins.add(
        "Bản tin", "ab" * 32, "opus", "ogg", 24, 60_000, 180_000, "ban-tin.mp3", "admin", NOW
    )
    start = NOW - timedelta(minutes=1)
    store.broadcasts.create(
        BROADCAST, bulletin.id, 1, devices, devices, start, start, NOW + timedelta(hours=1)
    )
    clock = FixedClock(NOW)
    yield Env(settings, store, clock, Ingestor(store, clock), devices)
    store.close()


def read_everything(env: Env, device_id: str | None = None) -> None:
    """Every read path the operator has: devices list, fleet status, reports, alerts, history."""
    ctx = env.ctx
    json.dumps([d.dump() for d in fleet.devices(ctx)])
    json.dumps(fleet.overview(env.store, ctx, HealthPolicy.from_settings(env.settings)).view.dump())
    json.dumps(fleet.device(ctx, device_id or env.devices[0]).dump())
    json.dumps(reports.broadcast_report(ctx, BROADCAST).view.dump())
    since = (NOW - timedelta(days=1)).strftime("%Y-%m-%d")
    json.dumps(reports.play_log(ctx, since, None, None).rows, default=str)
    evaluate(env.store, env.clock.now(), HealthPolicy.from_settings(env.settings))


@pytest.fixture
async def web(env: Env) -> AsyncIterator[WebServer]:
    controller = Controller(env.settings, env.store, env.clock)
    controller.ingestor = env.ingestor
    server = WebServer(controller, HealthPolicy.from_settings(env.settings), "127.0.0.1", 0)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def serve_everything(server: WebServer) -> dict[str, str]:
    """Every HTTP path, which must answer 200; their bodies."""
    env_clock = server.controller.clock
    assert isinstance(env_clock, FixedClock)
    env_clock.advance(timedelta(seconds=2))  # past the snapshot's cache
    bodies = {}
    async with aiohttp.ClientSession() as http:
        for path in ("api/fleet", "api/devices", "api/alerts", "metrics"):
            async with http.get(f"{server.url}{path}") as response:
                bodies[path] = await response.text()
                assert response.status == 200, (path, bodies[path])
    return bodies


# The reported cases, each reproduced first.


async def test_a_status_at_the_old_documented_maximum_ts_breaks_no_read(env: Env) -> None:
    await env.status(env.devices[0], ts=2**53 - 1)
    await env.ingestor.flush()
    read_everything(env)
    assert env.ingestor.counters.malformed == 1
    seen = env.store.devices.get(env.devices[0]).last_seen
    assert seen is None or seen <= env.clock.now()


async def test_a_status_from_2100_does_not_freeze_the_cluster(env: Env) -> None:
    device = env.devices[0]
    year_2100 = to_ms(datetime(2100, 1, 1, tzinfo=UTC))
    await env.status(device, ts=year_2100, volume=10)
    await env.ingestor.flush()
    env.clock.advance(timedelta(seconds=60))
    await env.status(device, ts=to_ms(env.clock.now()) - 500, volume=55)
    await env.ingestor.flush()
    info = env.store.devices.get(device)
    assert info.volume == 55, "the status after the one from the future was dropped as stale"
    assert info.last_seen is not None and info.last_seen <= env.clock.now()
    assert info.status_ts is not None and info.status_ts <= env.clock.now()
    assert env.ingestor.counters.future_timestamps == 1
    read_everything(env)


async def test_a_cluster_frozen_by_a_stored_future_ts_thaws(env: Env) -> None:
    # A database written before the fix may hold a status time stamp from the future.
    device = env.devices[0]
    frozen = Status(device, True, to_ms(datetime(2150, 1, 1, tzinfo=UTC)), volume=10)
    env.store.statuses.apply([frozen], from_ms(frozen.ts_ms))
    await env.status(device, volume=40)
    await env.ingestor.flush()
    assert env.store.devices.get(device).volume == 40


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"link": {"network": "4g", "rssi_dbm": 10**29}}, id="rssi-1e29"),
        pytest.param({"link": {"network": "4g", "rssi_dbm": 1}}, id="rssi-positive"),
        pytest.param({"cached_count": 3_000_000_000}, id="cached_count-3e9"),
        pytest.param({"uptime_s": 2**40}, id="uptime-2^40"),
        pytest.param({"storage_free_mb": 2**40}, id="storage-2^40"),
        pytest.param({"rejected_commands": 2**40}, id="rejected-2^40"),
        pytest.param({"firmware": "agent\x00 1.0"}, id="nul-firmware"),
        pytest.param({"model": "ipc\x00"}, id="nul-model"),
        pytest.param({"firmware": "agent\x1b[2J"}, id="escape-firmware"),
    ],
)
async def test_a_status_beyond_the_store_is_refused_and_its_batch_stored(
    env: Env, fields: dict[str, Any]
) -> None:
    bad, good = env.devices[0], env.devices[1]
    await env.status(bad, volume=11, **fields)
    await env.status(good, volume=22)
    await env.ingestor.flush()  # raised OverflowError / ValueError, or kept the batch forever
    assert env.ingestor.counters.malformed == 1
    assert env.store.devices.get(good).volume == 22
    assert env.store.devices.get(bad).volume is None
    read_everything(env)


async def test_a_nul_in_an_events_detail_is_refused_and_its_batch_stored(env: Env) -> None:
    bad, good = env.devices[0], env.devices[1]
    await env.event(bad, state="failed", reason="playback_error", detail="boom\x00")
    await env.event(good, state="failed", reason="playback_error", detail="hỏng loa")
    await env.ingestor.flush()
    assert env.ingestor.counters.malformed == 1
    states = {d.device_id: d for d in env.store.deliveries.of(BROADCAST)}
    assert states[good].detail == "hỏng loa" and states[bad].state == "pending"


async def test_an_event_from_the_future_is_taken_as_now(env: Env) -> None:
    device = env.devices[0]
    await env.event(device, ts=to_ms(datetime(2199, 1, 1, tzinfo=UTC)))
    await env.ingestor.flush()
    delivery = {d.device_id: d for d in env.store.deliveries.of(BROADCAST)}[device]
    assert delivery.accepted_at == env.clock.now()
    assert env.ingestor.counters.future_timestamps == 1
    read_everything(env)


def _poisoned(device_id: str, ts_ms: int) -> Status:
    """A status no validator would pass, as a bug or a future field might still produce one."""
    link = Link("4g")
    object.__setattr__(link, "rssi_dbm", 10**29)
    return dataclasses.replace(Status(device_id, True, ts_ms, volume=33), link=link)


async def test_a_row_the_store_refuses_is_set_aside_and_the_rest_of_the_batch_stored(env: Env) -> None:
    ms = to_ms(env.clock.now())
    statuses = [Status(d, True, ms, volume=44) for d in env.devices[:8]]
    statuses[5] = _poisoned(env.devices[5], ms)
    for status in statuses:
        env.ingestor._on_status(status.device_id, status)
    await env.ingestor.flush()
    assert env.ingestor.counters.set_aside == 1
    volumes = {d: env.store.devices.get(d).volume for d in env.devices[:8]}
    assert volumes == {d: (None if i == 5 else 44) for i, d in enumerate(env.devices[:8])}
    await env.ingestor.flush()  # nothing left to retry
    assert env.ingestor.counters.set_aside == 1
    assert "speakerctl_ingested_set_aside_total 1" in _metrics_text(env)


def _metrics_text(env: Env) -> str:
    from speakerctl.web import metrics

    overview = fleet.overview(env.store, env.ctx, HealthPolicy.from_settings(env.settings))
    counters = env.ingestor.counters
    return metrics.render(overview.snapshot, overview.deliveries, counters, 0.0, None)


async def test_a_store_outage_keeps_the_backlog_and_caps_it(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    ingestor = Ingestor(env.store, env.clock, backlog_cap=5)

    def down(*_: object) -> list[str]:
        raise StoreUnavailable("database unavailable: connection refused")

    monkeypatch.setattr(env.store.statuses, "apply", down)
    ms = to_ms(env.clock.now())
    for i, device_id in enumerate(env.devices[:8]):
        ingestor._on_status(device_id, Status(device_id, True, ms, volume=i))
    await ingestor.flush()
    assert ingestor.counters.dropped_statuses == 3 and ingestor.counters.set_aside == 0
    monkeypatch.undo()
    await ingestor.flush()
    volumes = [env.store.devices.get(d).volume for d in env.devices[:8]]
    assert volumes == [None, None, None, 3, 4, 5, 6, 7]


# The loops and handlers that must outlive a failure.


async def test_the_health_loop_outlives_a_failing_round(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    rounds: list[int] = []
    second = asyncio.Event()

    def failing(*_: object) -> tuple[list[object], list[object]]:
        rounds.append(1)
        if len(rounds) == 1:
            raise OverflowError("date value out of range")
        second.set()
        return [], []

    monkeypatch.setattr(monitor, "evaluate", failing)
    controller = Controller(env.settings, env.store, env.clock)
    task = asyncio.create_task(monitor.health_loop(controller, HealthPolicy.from_settings(env.settings), 0))
    done, _ = await asyncio.wait([task, asyncio.create_task(second.wait())], return_when="FIRST_COMPLETED")
    assert task not in done, f"the health loop died: {task.exception()!r}"
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    for leftover in done:
        await leftover


async def test_a_failing_web_handler_answers_500_in_one_line_and_the_server_lives_on(
    env: Env, web: WebServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: object, **__: object) -> None:
        raise OverflowError("date value out of range\nsecond line")

    monkeypatch.setattr(fleet, "overview", broken)
    async with aiohttp.ClientSession() as http, http.get(f"{web.url}api/fleet") as response:
        assert response.status == 500
        assert await response.text() == "error: date value out of range\n"
    monkeypatch.undo()
    await serve_everything(web)


# Warnings are counted and summarised, not written once per message.


def test_throttled_warnings_log_one_line_per_kind_and_interval_then_a_summary(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    warnings = Throttled(logging.getLogger("test.bounds"), lambda: now[0], interval_s=10)
    with caplog.at_level(logging.WARNING, "test.bounds"):
        for i in range(30_000):
            now[0] = i / 10_000
            warnings.log("malformed messages", f"pa/v1/dev/d{i}/status", "rejected a message %d", i)
        warnings.log("unknown devices", "x", "unknown device %s", "x")
        now[0] = 10.0
        warnings.flush()
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "rejected a message 0",
        "unknown device x",
        "29999 more malformed messages in the last 10 s, last from pa/v1/dev/d29999/status",
    ]


async def test_a_flood_of_malformed_messages_writes_a_few_lines(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, "speakerctl.controller.ingest"):
        for _ in range(1000):
            await env.ingestor.handle(Incoming(topics.device_status(env.devices[0]), b"{not json"))
    assert env.ingestor.counters.malformed == 1000
    assert len(caplog.records) <= 2


def test_time_conversions_are_total() -> None:
    assert utc_from_ms(2**63).year == 9999 and from_ms(-(2**63)).year == 1
    assert from_ms(2**53 - 1) == utc_from_ms(2**53 - 1)
    assert from_ms(1_717_205_404_020) == datetime(2024, 6, 1, 1, 30, 4, 20_000, tzinfo=UTC)


def test_the_agent_status_round_trips_within_bounds() -> None:
    status = Status("st-a", True, to_ms(NOW), link=Link("4g", -150), cached_count=2**31 - 1)
    assert codec.decode_status(codec.encode(status)) == status


# Every protocol-valid value at its bounds, through ingest, the store and every read path.

EDGE_TEXT = st.sampled_from(
    [
        "",
        "a" * MAX_TEXT_LENGTH,
        "ệ" * MAX_TEXT_LENGTH,
        "𝄞" * MAX_TEXT_LENGTH,
        "e\u0301" * (MAX_TEXT_LENGTH // 2),
        "'; DROP TABLE devices; --",
        '\\"%s%d{0}<script>&amp;',
        "\u2028\u2029\ufeff\u202eTin khẩn\u200b",
        "\U0010fffd\ufffd",
    ]
)
HASHES = [f"{i:064x}" for i in range(MAX_CACHED_LISTED)]


def _edges(lo: int, hi: int) -> st.SearchStrategy[int]:
    return st.sampled_from(sorted({lo, lo + 1, (lo + hi) // 2, hi - 1, hi}))


def _stamps(now_ms: int) -> st.SearchStrategy[int]:
    return st.sampled_from([0, 1, now_ms, now_ms + FUTURE_TOLERANCE_MS + 1, MAX_TIMESTAMP_MS])


def _statuses(now_ms: int) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "online": st.booleans(),
            "ts_ms": _stamps(now_ms),
            "firmware": EDGE_TEXT,
            "model": EDGE_TEXT,
            "volume": _edges(0, MAX_PERCENT),
            "playing": st.sampled_from([None, "A", "z" * 64, BROADCAST]),
            "uptime_s": _edges(0, MAX_UPTIME_S),
            "link": st.builds(
                Link, st.sampled_from(NETWORKS), st.none() | _edges(MIN_RSSI_DBM, MAX_RSSI_DBM)
            ),
            "power": st.builds(Power, st.sampled_from(POWER_SOURCES), st.none() | _edges(0, MAX_PERCENT)),
            "amplifier": st.sampled_from(AMPLIFIER_STATES),
            "cached": st.sampled_from([(), tuple(HASHES)]),
            "cached_count": _edges(0, MAX_COUNT),
            "protocol": _edges(1, MAX_PROTOCOL_REPORTED),
            "temperature_c": st.sampled_from(
                [None, MIN_TEMPERATURE_C, MAX_TEMPERATURE_C, -99.95, 5e-324, 199.99999999999997]
            ),
            "storage_free_mb": st.none() | _edges(0, MAX_STORAGE_FREE_MB),
            "clock_offset_ms": st.none() | _edges(-MAX_CLOCK_OFFSET_MS, MAX_CLOCK_OFFSET_MS),
            "rejected_commands": _edges(0, MAX_COUNT),
        }
    )


def _events(now_ms: int) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "ts_ms": _stamps(now_ms),
            "state": st.sampled_from(sorted(REPORTED)),
            "reason": st.sampled_from(list(Reason)),
            "detail": EDGE_TEXT,
            "cached": st.booleans(),
            "sha256": st.sampled_from([None, HASHES[0]]),
        }
    )


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
async def test_protocol_valid_values_at_every_bound_reach_every_read_path(
    env: Env, web: WebServer, data: st.DataObject
) -> None:
    env.clock.advance(timedelta(minutes=1))
    now_ms = to_ms(env.clock.now())
    device = data.draw(st.sampled_from(env.devices))
    status = Status(device, **data.draw(_statuses(now_ms)))
    event = DeliveryEvent("e-prop", device, broadcast_id=BROADCAST, **data.draw(_events(now_ms)))
    ack = Ack("a-prop", device, data.draw(_stamps(now_ms)), "c-prop", detail=data.draw(EDGE_TEXT))
    await env.ingestor.handle(Incoming(topics.device_status(device), codec.encode(status)))
    for message in (event, ack):
        await env.ingestor.handle(Incoming(topics.device_events(device), codec.encode(message)))
    await env.ingestor.flush()
    counters = env.ingestor.counters
    assert (counters.malformed, counters.set_aside) == (0, 0), "a valid value did not fit the store"
    info = env.store.devices.get(device)
    assert info.last_seen is None or info.last_seen <= env.clock.now()
    if status.online and info.last_seen == env.clock.now():
        taken = (info.firmware, info.rssi_dbm, info.cached_count, info.clock_offset_ms, info.temperature_c)
        link = status.link.rssi_dbm
        assert taken == (
            status.firmware,
            link,
            status.cached_count,
            status.clock_offset_ms,
            status.temperature_c,
        )
    read_everything(env, device)
    bodies = await serve_everything(web)
    assert "speakerctl_ingested_set_aside_total 0" in bodies["metrics"]


def test_a_title_with_control_characters_still_goes_on_the_wire() -> None:
    """Titles come from files and operators; the `play` command carries a clean one (it refused to send)."""
    plan = Plan("bc-1", "Bản tin\tsáng\nnay" + "x" * 300, (), (), frozenset(), (), 1000, datetime.now(UTC))
    play = Play("bc-1", (ContentRef("ab" * 32, 1000, "opus", 1000),), None, None, plan.wire_title)
    decoded = codec.decode_command(codec.encode(Command("m1", 1, 2, Priority.NORMAL, play)))
    assert isinstance(decoded.body, Play) and decoded.body.title.startswith("Bản tin sáng nay")
    assert len(decoded.body.title) == MAX_TEXT_LENGTH


@contextmanager
def _store_away(url: str) -> Iterator[None]:
    """The database really unavailable: SQLite locked by another writer, PostgreSQL renamed away."""
    if url.startswith("sqlite"):
        locker = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        locker.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            locker.execute("ROLLBACK")
            locker.close()
        return
    name = url.rsplit("/", 1)[1]
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    kick = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s"
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(kick, (name,))
            conn.exec_driver_sql(f'ALTER DATABASE "{name}" RENAME TO "{name}_away"')
        try:
            yield
        finally:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'ALTER DATABASE "{name}_away" RENAME TO "{name}"')
    finally:
        admin.dispose()


async def test_a_flood_during_a_store_outage_is_held_bounded_and_no_delivery_is_lost(
    env: Env, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(engine, "BUSY_TIMEOUT_S", 0.05)  # a locked SQLite fails at once
    store = open_store(env.settings)
    ingestor = Ingestor(store, env.clock, backlog_cap=40)
    held: list[int] = []

    async def hand(device_id: str, message: Status | DeliveryEvent) -> None:
        topic = topics.device_status if isinstance(message, Status) else topics.device_events
        await ingestor.handle(Incoming(topic(device_id), codec.encode(message)))
        held.append(ingestor.held)

    ms, devices = to_ms(env.clock.now()), env.devices[:30]
    try:
        with _store_away(env.settings.db_url):
            for round_ in range(30):  # 30 clusters flood statuses and repeat their reports
                for i, device in enumerate(devices):
                    await hand(device, Status(device, True, ms, volume=round_))
                    for state in REPORTED_IN_ORDER[: 1 + min(round_, 3)]:
                        event = DeliveryEvent(f"e{round_}-{i}-{state}", device, ms, BROADCAST, state)
                        await hand(device, event)
                await ingestor.flush()  # fails: the store is away
            assert ingestor.counters.merged_statuses and ingestor.counters.merged_events
            assert ingestor.counters.dropped_events == 0
        await ingestor.flush()
        assert ingestor.held == 0
        assert max(held) <= 2 * (40 + 40 // 10)
        deliveries = store.deliveries.of(BROADCAST)
        assert {d.device_id for d in deliveries if d.state is FINISHED} == set(devices)
        assert {store.devices.get(d).volume for d in devices} == {29}
        assert "delivery backlog full (40)" in caplog.text
    finally:
        store.close()


async def test_reports_past_the_cap_after_merging_are_dropped_counted_and_logged(
    env: Env, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    ingestor = Ingestor(env.store, env.clock, backlog_cap=10)

    def down(*_: object) -> int:
        raise StoreUnavailable("database unavailable: connection refused")

    monkeypatch.setattr(env.store.deliveries, "apply", down)
    device, ms = env.devices[0], to_ms(env.clock.now())
    for n in range(25):  # 25 different broadcasts: nothing to merge
        event = DeliveryEvent(f"e{n}", device, ms, f"bc-{n}", DeliveryState.ACCEPTED)
        await ingestor.handle(Incoming(topics.device_events(device), codec.encode(event)))
    await ingestor.flush()
    assert ingestor.counters.dropped_events == 15 and ingestor.counters.merged_events == 0
    assert "dropped the 2 oldest reports" in caplog.text
