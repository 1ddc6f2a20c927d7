"""The provincial source system, against a real HTTP province on loopback: uploads, pushes, outages.

Time is a FixedClock the tests move: the outbox's backoff is counted from it, so nothing sleeps.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from subprocess import PIPE

import pytest
from aiohttp import web
from province_server import PASSWORD, USER, ProvinceServer

from speakerctl.app import approvals, province
from speakerctl.app.access import local_administrator
from speakerctl.app.context import AppContext, open_store
from speakerctl.app.integration_views import AiredFeedView, AiredItemView, OutboxChannelView, SyncView
from speakerctl.audio import generate_speechlike
from speakerctl.broker.ports import free_port
from speakerctl.clock import FixedClock, SystemClock
from speakerctl.config import Integrations, ProvinceSettings, Settings, load_settings
from speakerctl.errors import ConfigError, LoginRefused
from speakerctl.integrations.http import HttpClient
from speakerctl.integrations.mapping import load_profile
from speakerctl.integrations.province import ProvinceConnector
from speakerctl.protocol import Status
from speakerctl.retry import Backoff, delay_after
from speakerctl.store import BroadcastState, DeliveryStatus, DeliveryUpdate, NewOutboxItem, Store

NOW = datetime(2026, 11, 29, 6, 0, tzinfo=UTC)
COMMUNE = "st-ke-sach-an-my"
DEV, OTHER = "st-ke-sach-an-my-01", "st-ke-sach-an-my-02"
FAR = "st-ke-sach-an-my"  # the commune's own clusters only


@pytest.fixture
async def server() -> AsyncIterator[ProvinceServer]:
    """The province, listening."""
    found = ProvinceServer()
    await found.start()
    yield found
    await found.stop()


def _settings(tmp_path: Path, server: ProvinceServer, password: str = PASSWORD) -> Settings:
    place = ProvinceSettings(
        name="soc-trang", base_url=server.url, zone=COMMUNE, username=USER, password=password, backfill_h=2
    )
    return Settings(data_dir=tmp_path / "data", integrations=Integrations(provinces=(place,)))


def _aired(store: Store, broadcast_id: str, at: datetime, title: str = "Bản tin sáng") -> None:
    """A bulletin broadcast to the commune that played on DEV and failed on OTHER, ended at `at`."""
    bulletin = store.bulletins.add(title, broadcast_id.ljust(64, "0")[:64], "opus", "ogg", 24, 60_000,
                                   180_000, "ban-tin.mp3", "bien-tap-vien", at)  # fmt: skip
    start = at - timedelta(minutes=2)
    store.broadcasts.create(broadcast_id, bulletin.id, 2, [COMMUNE], [DEV, OTHER], start, start, at,
                            started_by="lan")  # fmt: skip
    t = int(start.timestamp() * 1000)
    store.deliveries.apply(
        [
            DeliveryUpdate(broadcast_id, DEV, DeliveryStatus.PLAYING, None, "", t + 1_000),
            DeliveryUpdate(broadcast_id, DEV, DeliveryStatus.FINISHED, None, "", t + 61_000),
            DeliveryUpdate(broadcast_id, OTHER, DeliveryStatus.FAILED, "amplifier_fault", "", t + 900),
        ]
    )
    store.broadcasts.finish(broadcast_id, BroadcastState.COMPLETE, at)


@pytest.fixture
def world(tmp_path: Path, server: ProvinceServer) -> Iterator[tuple[AppContext, Store]]:
    """Two clusters heard from and one airing, a pushed schedule waiting at the province."""
    settings = _settings(tmp_path, server)
    store = open_store(settings)
    ms = int(NOW.timestamp() * 1000)
    store.statuses.apply([Status(DEV, True, ms, firmware="0.4.1", volume=60), Status(OTHER, True, ms)], NOW)
    _aired(store, "bc-morning", NOW - timedelta(minutes=30))
    audio = generate_speechlike(2.0, tmp_path / "lich-phat.wav")
    server.push({"id": "p-7", "type": "SCHEDULE", "title": "Lịch phát sáng", "priority": 1,
                 "dailyTimes": "05:30", "weekdays": "mon-sun", "areaCode": COMMUNE}, audio)  # fmt: skip
    yield AppContext(settings, FixedClock(NOW)), store
    store.close()


def _connector(ctx: AppContext, store: Store, http: HttpClient) -> ProvinceConnector:
    return province.connector(ctx, store, ctx.settings.integrations.province(None), http)


async def test_statuses_airings_and_a_pushed_schedule_round_trip_through_an_outage(
    world: tuple[AppContext, Store], server: ProvinceServer, tmp_path: Path
) -> None:
    ctx, store = world
    clock = ctx.clock
    assert isinstance(clock, FixedClock)
    audio = generate_speechlike(1.5, tmp_path / "ban-tin-tinh.wav")
    server.push({"id": "p-8", "type": "FILE", "title": "Bản tin của tỉnh", "priority": 2}, audio)
    server.push({"id": "p-9", "type": "FILE", "title": "Khẩn cấp", "priority": 3}, audio)
    async with HttpClient(5) as http:
        connector = _connector(ctx, store, http)
        first = await connector.sync_once()
        assert (first.statuses, first.airings, first.pushed, first.held_until) == (2, 1, 3, None)
        status = server.state.of_kind("status:")
        assert {s["deviceCode"] for s in status.values()} == {DEV, OTHER}
        mine = next(s for s in status.values() if s["deviceCode"] == DEV)
        assert (mine["volume"], mine["appVersion"], mine["onlineStatus"], mine["playStatus"]) == (
            60,
            "0.4.1",
            1,
            "IDLE",
        )
        assert (mine["latitude"], mine["longitude"]) == (9.83791, 105.99121)
        (airing,) = server.state.of_kind("airing:").values()
        assert airing["deviceCode"] == DEV and airing["programName"] == "Bản tin sáng"
        assert (airing["priority"], airing["author"], airing["programType"], airing["isRelay"]) == (
            2,
            "bien-tap-vien",
            "FILE",
            False,
        )
        assert airing["duration"] == 60.0 and airing["startTime"].startswith("2026-11-29T05:28:01")
        ack = server.state.acks["p-7"]
        assert ack["status"] == "queued" and "schedule queued for approval" in ack["detail"]
        assert (
            server.state.acks["p-8"]["status"] == "queued"
            and server.state.acks["p-9"]["status"] == "rejected"
        )
        assert "CAP alert" in server.state.acks["p-9"]["detail"]
        bulletin, held = approvals.queue(ctx, actor=local_administrator())  # Circular 39: the commune decides
        assert (bulletin.kind, bulletin.priority, bulletin.submitted_by) == (
            "broadcast",
            "priority",
            "province:soc-trang",
        )
        assert (held.kind, held.targets, held.submitted_by) == ("schedule", [COMMUNE], "province:soc-trang")
        await approvals.approve(ctx, held.id, actor=local_administrator())
        (scheduled,) = [s for s in ctx.book().all() if s.name == "Lịch phát sáng"]
        assert scheduled.targets == (COMMUNE,) and scheduled.rule.times == (time(5, 30),)

        await server.stop()  # the province goes down; the commune keeps airing
        _aired(store, "bc-noon", NOW + timedelta(minutes=1), "Bản tin trưa")
        clock.advance(timedelta(minutes=5))
        assert await connector.collect_airings() == 1
        down = await connector.deliver()
        assert down.delivered == 0 and down.held_until is not None
        assert store.outbox.summary(connector.channel).pending == 1
        assert "unreachable" in store.outbox.summary(connector.channel).last_error
        clock.advance(timedelta(seconds=1))  # still inside the wait: no attempt at all
        assert (await connector.deliver()).held_until == down.held_until

        await server.start()
        clock.advance(down.held_until - clock.now())
        assert (await connector.deliver()).delivered == 1
    titles = {a["programName"] for a in server.state.of_kind("airing:").values()}
    assert titles == {"Bản tin sáng", "Bản tin trưa"}  # nothing lost
    assert store.outbox.summary(connector.channel).pending == 0
    assert max(server.state.deliveries.values()) == 1


async def test_serve_keeps_the_province_in_sync_in_the_background(
    world: tuple[AppContext, Store], server: ProvinceServer
) -> None:
    ctx, store = world
    fast = replace(ctx.settings.integrations, delivery_interval_s=0.05)
    live = AppContext(ctx.settings.with_overrides(integrations=fast), SystemClock())  # the loop's own time
    async with province.integrated(live, store):
        await server.seen.wait_for(
            lambda keys: {k.split(":")[0] for k in keys} >= {"status", "ack"},
            "the statuses and the pushed schedule's acknowledgement",
            timeout=120,
        )
    assert server.state.acks["p-7"]["status"] == "queued"


async def test_the_token_goes_to_the_province_only_not_to_a_file_host_it_names(
    world: tuple[AppContext, Store], server: ProvinceServer, tmp_path: Path
) -> None:
    ctx, store = world
    audio = generate_speechlike(1.0, tmp_path / "cdn.wav").read_bytes()
    asked: list[str | None] = []

    async def serve_file(request: web.Request) -> web.Response:
        asked.append(request.headers.get("Authorization"))
        return web.Response(body=audio, content_type="audio/wav")

    cdn = web.Application()
    cdn.router.add_get("/tin.wav", serve_file)
    runner = web.AppRunner(cdn, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    server.state.inbox.append(
        {"id": "p-10", "type": "FILE", "title": "Tin từ CDN", "fileUrl": f"http://127.0.0.1:{port}/tin.wav"}
    )
    try:
        async with HttpClient(5) as http:
            await _connector(ctx, store, http).sync_once()
    finally:
        await runner.cleanup()
    assert asked == [None] and server.state.acks["p-10"]["status"] == "queued"


async def test_a_lost_answer_is_sent_again_and_the_province_keeps_one(
    world: tuple[AppContext, Store], server: ProvinceServer
) -> None:
    ctx, store = world
    server.state.lose_answers.add("airing:bc-morning:" + DEV)
    async with HttpClient(5) as http:
        connector = _connector(ctx, store, http)
        first = await connector.sync_once()
        assert first.held_until is not None  # a 502: the province counts as down for a while
        assert isinstance(ctx.clock, FixedClock)
        ctx.clock.advance(first.held_until - ctx.clock.now())
        again = await connector.sync_once()
    assert again.held_until is None and store.outbox.summary(connector.channel).pending == 0
    assert server.state.deliveries["airing:bc-morning:" + DEV] == 2
    assert len(server.state.of_kind("airing:")) == 1  # the same key twice: stored once


async def test_the_same_event_enqueued_twice_is_stored_once(world: tuple[AppContext, Store]) -> None:
    _, store = world
    item = NewOutboxItem("province:x", "airing", "airing:a:b", {"k": 1}, NOW)
    assert store.outbox.enqueue([item, item], NOW) == 1
    assert store.outbox.enqueue([item], NOW) == 0
    newer = NewOutboxItem("province:x", "status", "status:d:2", {"v": 2}, NOW, subject="d")
    store.outbox.enqueue(
        [NewOutboxItem("province:x", "status", "status:d:1", {"v": 1}, NOW, subject="d")], NOW
    )
    store.outbox.enqueue([newer], NOW, latest_only=True)
    statuses = [i.payload for i in store.outbox.items("province:x") if i.kind == "status"]
    assert statuses == [{"v": 2}]  # a status not yet sent is replaced by a newer one


async def test_an_expired_token_is_renewed_and_a_refused_login_is_one_clear_error(
    world: tuple[AppContext, Store], server: ProvinceServer, caplog: pytest.LogCaptureFixture
) -> None:
    ctx, store = world
    async with HttpClient(5) as http:
        connector = _connector(ctx, store, http)
        await connector.sync_once()
        server.expire_tokens()
        _aired(store, "bc-noon", NOW + timedelta(minutes=1))
        assert isinstance(ctx.clock, FixedClock)
        ctx.clock.advance(timedelta(minutes=5))
        logins = server.state.logins
        assert (await connector.sync_once()).delivered >= 1
        assert server.state.logins == logins + 1  # one 401, one new login, the same request again

        server.state.refuse_logins = True
        server.expire_tokens()
        with pytest.raises(LoginRefused, match="refused the login of 'xa-an-my'"):
            await connector.sync_once()
        with caplog.at_level(logging.ERROR):
            await connector._logged(connector.poll_inbox)  # as `serve` runs it: logged, not raised
        assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == [
            "province soc-trang refused the login of 'xa-an-my' (HTTP 401)"
        ]


async def test_the_cli_syncs_once_and_a_refused_login_exits_8(
    world: tuple[AppContext, Store], server: ProvinceServer, tmp_path: Path
) -> None:
    ctx, _ = world
    config = tmp_path / "speakerctl.toml"
    config.write_text(
        f'data_dir = "{ctx.settings.data_dir}"\n\n[[province]]\nname = "soc-trang"\n'
        f'base_url = "{server.url}"\nzone = "{COMMUNE}"\nusername = "{USER}"\npassword = "{PASSWORD}"\n',
        encoding="utf-8",
    )
    code, out, err = await _speakerctl("--config", str(config), "province", "sync", "--once", "--json")
    assert code == 0, err
    done = json.loads(out)
    assert (done["statuses"], done["pushed"], done["outbox"]["pending"]) == (2, 1, 0)
    code, out, _err = await _speakerctl("--config", str(config), "province", "status")
    assert code == 0 and "province:soc-trang" in out
    server.state.refuse_logins = True
    code, out, err = await _speakerctl("--config", str(config), "province", "sync", "--once")
    assert code == 8, err
    assert err.splitlines()[0] == "error: province soc-trang refused the login of 'xa-an-my' (HTTP 401)"
    assert "Traceback" not in err


async def _speakerctl(*args: str) -> tuple[int, str, str]:
    """Run the real CLI in its own process (this loop keeps serving the province meanwhile)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "speakerctl",
        *args,
        stdout=PIPE,
        stderr=PIPE,
        env={**os.environ, "COLUMNS": "200"},
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=300)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def test_settings_and_profiles_refuse_what_they_cannot_use(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[province]]\nname = "x"\nbase_url = "ftp://x"\nzone = "z"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="not an http"):
        load_settings(bad, env={})
    bad.write_text('[province]\nname = "x"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="array of tables"):
        load_settings(bad, env={})
    profile = tmp_path / "vendor.toml"
    profile.write_text('[endpoints]\nlogin = "/l"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"\[endpoints\] lacks status"):
        load_profile(str(profile))
    default = load_profile("default")
    assert default.outgoing("status", {"play_state": "playing", "unmapped": 1}) == {"playStatus": "PLAYING"}
    assert default.incoming("inbox", {"type": "SCHEDULE", "x": 1}) == {"type": "schedule"}


def test_backoff_grows_to_its_cap_with_jitter() -> None:
    backoff = Backoff(None, first_s=5, max_s=600, jitter_s=5)
    waits = [delay_after(n, backoff) for n in range(1, 12)]
    assert 5 <= waits[0] <= 10 and 10 <= waits[1] <= 15 and all(600 <= w <= 605 for w in waits[8:])


def test_the_views_keep_their_field_names() -> None:
    pinned = {
        AiredItemView: (
            "id",
            "title",
            "priority",
            "started_at",
            "ended_at",
            "duration_s",
            "clusters",
            "author",
        ),
        AiredFeedView: ("zone", "name", "updated_at", "items"),
        OutboxChannelView: ("channel", "pending", "delivered", "oldest_pending", "last_error"),
        SyncView: (
            "province",
            "statuses",
            "airings",
            "pushed",
            "delivered",
            "failed",
            "held_until",
            "outbox",
        ),
    }
    for view, fields in pinned.items():
        assert tuple(view.model_fields) == fields, view.__name__
