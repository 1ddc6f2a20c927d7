"""Crash recovery that loses nothing: persistent controller sessions, resume after accept, pushed airings."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta
from functools import partial
from pathlib import Path

from test_faults import ZONE, random_bulletin, trusted_fleet
from waiting import Observed, connected, wait_until

from simulator.faults import FleetRunner
from simulator.fleet import Fleet
from speakerctl.app import runtime
from speakerctl.app.context import open_store
from speakerctl.broker.link import Incoming, Link
from speakerctl.broker.mosquitto import MosquittoProcess
from speakerctl.clock import to_ms
from speakerctl.config import Settings
from speakerctl.controller.planning import plan_broadcast
from speakerctl.controller.resilience import play_command_id
from speakerctl.controller.resume import resume_broadcasts, unfinished
from speakerctl.controller.service import BroadcastRequest, Controller
from speakerctl.controller.session import command_session, installation_id, serve_session
from speakerctl.errors import NotFound
from speakerctl.fleet import load_inventory
from speakerctl.protocol import (
    Command,
    DeliveryEvent,
    Play,
    PreemptPolicy,
    Priority,
    Reason,
    codec,
    topics,
)
from speakerctl.protocol.lifecycle import ACCEPTED, CONTENT_READY, FAILED, FINISHED, PENDING, PLAYING
from speakerctl.store import BroadcastState, Store


@asynccontextmanager
async def _online(fleet: Fleet) -> AsyncIterator[FleetRunner]:
    """Every cluster of `fleet` running and online, until the block ends."""
    async with FleetRunner() as runner:
        for device in fleet.devices.values():
            runner.start(device.agent)
        await fleet.wait_online(30)
        yield runner


def _settings(tmp_path: Path, broker: MosquittoProcess) -> Settings:
    return Settings(data_dir=tmp_path / "ctl", broker=broker.url, accept_window_s=1, broadcast_timeout_s=12)


def _all_in(store: Store, broadcast_id: str, *states: str) -> bool:
    try:
        return all(d.state in states for d in store.deliveries.of(broadcast_id))
    except NotFound:  # not planned yet
        return False


def test_controller_ids_are_stable_per_installation_and_unique_per_process(tmp_path: Path) -> None:
    base = installation_id(tmp_path)
    assert base.startswith("speakerctl-") and installation_id(tmp_path) == base
    assert installation_id(tmp_path / "other") != base
    serve = serve_session(tmp_path)
    assert serve.client_id == f"{base}-serve" and serve.persistent
    one, two = command_session(tmp_path, pid=1), command_session(tmp_path, pid=2)
    assert one.client_id != two.client_id != serve.client_id and not one.persistent


async def test_events_published_while_serve_is_away_are_ingested_when_it_returns(
    tmp_path: Path, mosquitto: MosquittoProcess
) -> None:
    settings = _settings(tmp_path, mosquitto)
    store = open_store(settings)
    session = serve_session(settings.data_dir)
    async with Controller(settings, store, session=session).running():
        pass
    device = load_inventory().devices_under(ZONE)[0].id
    event = DeliveryEvent("m1", device, 1, "bc-away", ACCEPTED)
    link = Link(settings.broker_address, _ignore)
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(link.run())
        await link.publish(topics.device_events(device), codec.encode(event))
        task.cancel()
    back = Controller(settings, store, session=session)
    async with back.running():
        await wait_until(lambda: back.ingestor.counters.events >= 1, "the queued event")


async def _ignore(_: object) -> None:
    return None


async def test_resume_after_every_cluster_accepted_uploads_and_every_cluster_plays(
    tmp_path: Path, mosquitto: MosquittoProcess
) -> None:
    settings = _settings(tmp_path, mosquitto)
    store = open_store(settings)
    bulletin = random_bulletin(store, settings.content_dir, 4 * 16384)
    fleet = trusted_fleet(settings, tmp_path / "fleet", ZONE, time_scale=20, repair_after_s=0.5)
    async with _online(fleet):
        crashed = Controller(settings, store)
        async with crashed.running():
            broadcast_id = await _send_without_upload(crashed, bulletin)
            await wait_until(lambda: _all_in(store, broadcast_id, ACCEPTED), "every cluster to accept")
        resumed = Controller(settings, store)
        async with resumed.running():
            [result] = await resume_broadcasts(resumed)
    assert result.played == len(fleet.devices), result.counts
    assert all(len(d.output.played) == 1 for d in fleet.devices.values())


async def _send_without_upload(controller: Controller, bulletin: int) -> str:
    """Plan and publish a broadcast, as a controller that crashes before its upload would."""
    now = controller.clock.now()
    plan = plan_broadcast(controller.store, bulletin, (ZONE,), Priority.NORMAL, now, 60, "bc-crash")
    now_ms = to_ms(now)
    play = Play(plan.broadcast_id, plan.variants, title=plan.title)
    command = Command(
        play_command_id(plan.broadcast_id, now_ms), now_ms, to_ms(plan.expires_at), Priority.NORMAL, play
    )
    for topic in plan.topics:
        await controller.link.publish(topic, codec.encode(controller.signer.sign_for(command, topic)))
    return plan.broadcast_id


async def test_serve_follows_its_pushed_airing_after_a_restart_and_keeps_its_play_options(
    tmp_path: Path, mosquitto: MosquittoProcess
) -> None:
    settings = _settings(tmp_path, mosquitto)
    store = open_store(settings)
    bulletin = random_bulletin(store, settings.content_dir, 2 * 16384)
    fleet = trusted_fleet(settings, tmp_path / "fleet", ZONE, time_scale=20, repair_after_s=0.5)
    session = serve_session(settings.data_dir)
    async with _online(fleet):
        first = Controller(settings, store, session=session)
        async with first.running():
            now = first.clock.now()
            request = BroadcastRequest(
                bulletin,
                (ZONE,),
                start_at=now + timedelta(seconds=6),
                expires_at=now + timedelta(seconds=60),
                volume=33,
                on_preempt=PreemptPolicy.RESUME,
                broadcast_id="bc-pushed",
            )
            pushed = asyncio.create_task(first.broadcast(request))
            await wait_until(lambda: _all_in(store, "bc-pushed", "content_ready"), "the push to arrive")
            pushed.cancel()  # serve stops: the airing is not over
            await asyncio.gather(pushed, return_exceptions=True)
        info = store.broadcasts.get("bc-pushed")
        assert info.state is BroadcastState.RUNNING
        assert (info.volume, info.on_preempt, info.start_at) == (33, PreemptPolicy.RESUME, request.start_at)
        one_shot = Controller(settings, store)
        assert await unfinished(one_shot) == []  # the one-shot `resume` leaves a future airing alone
        again = Controller(settings, store, session=session)
        async with again.running(), runtime.resumed(again) as ids:
            assert ids == ["bc-pushed"]
            await wait_until(lambda: _all_in(store, "bc-pushed", FINISHED), "every cluster to play it")
            await wait_until(
                lambda: store.broadcasts.get("bc-pushed").state is BroadcastState.COMPLETE, "the report"
            )
    assert all(len(d.output.played) == 1 for d in fleet.devices.values())


async def test_serve_does_not_send_again_a_pushed_airing_it_published_to_silent_compact_clusters(
    tmp_path: Path, mosquitto: MosquittoProcess
) -> None:
    """Compact (v1.3) clusters with the content cached answer a pushed play with nothing until they
    play it: still `pending`, they were sent the play again after a restart (CI, issue 13)."""
    settings = _settings(tmp_path, mosquitto)
    store = open_store(settings)
    bulletin = random_bulletin(store, settings.content_dir, 2 * 16384)
    fleet = trusted_fleet(settings, tmp_path / "fleet", ZONE, time_scale=20, repair_after_s=0.5)
    session = serve_session(settings.data_dir)
    async with _online(fleet):
        first = Controller(settings, store, session=session)
        async with first.running():
            cached = await first.broadcast(BroadcastRequest(bulletin, (ZONE,)))
            assert cached.played == len(fleet.devices), cached.counts
            start = first.clock.now() + timedelta(seconds=6)
            request = BroadcastRequest(bulletin, (ZONE,), start_at=start, broadcast_id="bc-silent")
            pushed = asyncio.create_task(first.broadcast(request))
            await wait_until(lambda: _published(store, "bc-silent"), "the push")
            pushed.cancel()
            await asyncio.gather(pushed, return_exceptions=True)
        assert _all_in(store, "bc-silent", PENDING)  # silent until they play
        again = Controller(settings, store, session=session)
        async with again.running(), runtime.resumed(again) as ids:
            assert ids == ["bc-silent"]
            await wait_until(
                lambda: store.broadcasts.get("bc-silent").state is BroadcastState.COMPLETE, "the airing"
            )
    assert all(len(d.output.played) == 2 for d in fleet.devices.values())
    assert sum(d.agent.counters.duplicates for d in fleet.devices.values()) == 0


def _published(store: Store, broadcast_id: str) -> bool:
    try:
        return store.broadcasts.get(broadcast_id).published_at is not None
    except NotFound:  # not planned yet
        return False


async def test_a_cluster_rebooted_between_play_and_resume_still_answers_the_resent_play(
    tmp_path: Path, mosquitto: MosquittoProcess
) -> None:
    settings = _settings(tmp_path, mosquitto)
    store = open_store(settings)
    bulletin = random_bulletin(store, settings.content_dir, 2 * 16384)
    commune = load_inventory().children(ZONE)[0].id
    fleet = trusted_fleet(settings, tmp_path / "fleet", commune, time_scale=20, repair_after_s=0.5)
    heard: Observed[DeliveryEvent] = Observed()
    listener = Link(settings.broker_address, partial(_hear, heard))
    await listener.subscribe([topics.ALL_EVENTS])
    async with connected(listener), _online(fleet) as runner:
        gone = Controller(settings, store)  # a clean session: what clusters say after it left is lost
        async with gone.running():
            start = gone.clock.now() + timedelta(seconds=6)
            request = BroadcastRequest(bulletin, (commune,), start_at=start, broadcast_id="bc-reboot")
            pushed = asyncio.create_task(gone.broadcast(request))
            await wait_until(lambda: _all_in(store, "bc-reboot", CONTENT_READY), "the push")
            pushed.cancel()
            await asyncio.gather(pushed, return_exceptions=True)
        await heard.wait_for(lambda seen: _finished(seen) == set(fleet.devices), "every cluster to play")
        await runner.power_cut(fleet.devices)
        for name in list(fleet.devices):
            runner.start(fleet.rebuild(name).agent)
        await fleet.wait_online(30)
        resumed = Controller(settings, store)
        async with resumed.running():
            [result] = await resume_broadcasts(resumed)
    assert result.played == len(fleet.devices), result.counts
    assert all(d.state is FINISHED for d in store.deliveries.of(result.broadcast_id))
    assert all(d.output.played == [] and d.agent.counters.duplicates for d in fleet.devices.values())


async def _hear(heard: Observed[DeliveryEvent], message: Incoming) -> None:
    event = codec.decode_event(message.payload)
    if isinstance(event, DeliveryEvent):
        heard.add(event)


def _finished(seen: Sequence[DeliveryEvent]) -> set[str]:
    return {e.device_id for e in seen if e.state is FINISHED}


async def test_a_cluster_rebooted_while_playing_reports_it_failed_at_once_not_unreached(
    tmp_path: Path, mosquitto: MosquittoProcess
) -> None:
    settings = Settings(data_dir=tmp_path / "ctl", broker=mosquitto.url, broadcast_timeout_s=60)
    store = open_store(settings)
    bulletin = random_bulletin(store, settings.content_dir, 2 * 16384, duration_ms=120_000)
    commune = load_inventory().children(ZONE)[0].id
    fleet = trusted_fleet(settings, tmp_path / "fleet", commune, time_scale=20, repair_after_s=0.5)
    async with _online(fleet) as runner:
        controller = Controller(settings, store)
        async with controller.running():
            request = BroadcastRequest(bulletin, (commune,), broadcast_id="bc-cut")
            sent = asyncio.create_task(controller.broadcast(request))
            await wait_until(lambda: _all_in(store, "bc-cut", PLAYING), "every cluster to play")
            await runner.power_cut(fleet.devices)  # within the 6 s it plays at this time scale
            for name in list(fleet.devices):
                runner.start(fleet.rebuild(name).agent)
            async with asyncio.timeout(30):  # half the broadcast's timeout: no cluster was waited out
                result = await sent
    assert result.counts == {FAILED: len(fleet.devices)}
    assert {d.reason for d in store.deliveries.of("bc-cut")} == {Reason.REBOOTED.value}
    assert all(d.output.played == [] for d in fleet.devices.values())  # and it did not play twice
