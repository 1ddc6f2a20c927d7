"""Live audio end to end: a real Mosquitto, simulated clusters, the controller, real ffmpeg."""

from __future__ import annotations

import asyncio
import signal
import statistics
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from icecast import Icecast, running_icecast
from waiting import connected, wait_until

from devices.player import Job
from simulator.fleet import Fleet, FleetOptions
from speakerctl.app.alerts import RELAY_SOURCE_AWAY
from speakerctl.app.bulletins import import_bulletin
from speakerctl.app.context import open_store
from speakerctl.app.live import LiveRequest, stream_live
from speakerctl.audio import generate_tone
from speakerctl.audio.ffmpeg import Measurement, measure
from speakerctl.audio.live import filler_packets
from speakerctl.audio.ogg import ogg_opus
from speakerctl.broker.link import Incoming, Link
from speakerctl.broker.mosquitto import MosquittoProcess
from speakerctl.clock import to_ms
from speakerctl.config import Settings
from speakerctl.controller.live import NO_LIVE, OFFLINE
from speakerctl.controller.service import BroadcastRequest, Controller
from speakerctl.errors import LiveSourceError, SourceStalled
from speakerctl.fleet import load_inventory, provisioning_records
from speakerctl.protocol import PreemptPolicy, Priority
from speakerctl.protocol.live import LiveFrame, live_topic, pack_frame
from speakerctl.security.keys import load_or_create_signer, trusted_path

ZONE = "st-ke-sach"
CLUSTERS = 5


@dataclass
class LiveRig:
    """A few clusters of one district (one of them on v1.1 firmware) and a controller."""

    fleet: Fleet
    controller: Controller
    legacy: str
    tmp: Path


@pytest.fixture
async def rig(mosquitto: MosquittoProcess, tmp_path: Path) -> AsyncIterator[LiveRig]:
    settings = Settings(data_dir=tmp_path / "controller", broker=str(mosquitto.url))
    inventory = load_inventory()
    ids = [d.id for d in inventory.devices_under(ZONE)][:CLUSTERS]
    load_or_create_signer(settings.keys_dir)
    options = FleetOptions(
        root=tmp_path / "fleet",
        trust_file=trusted_path(settings.keys_dir),
        max_clock_offset_ms=3_000,  # the play-out must follow the controller's clock, not theirs
        legacy=frozenset(ids[-1:]),
        heartbeat_s=5,
    )
    fleet = Fleet(provisioning_records(inventory), settings.broker_address, options)
    fleet.devices = {k: v for k, v in fleet.devices.items() if k in ids}
    store = open_store(settings)
    controller = Controller(settings, store)
    async with asyncio.TaskGroup() as tg:
        fleet_task = tg.create_task(fleet.run())
        await fleet.wait_online(30)
        async with controller.running():
            yield LiveRig(fleet, controller, ids[-1], tmp_path)
        fleet_task.cancel()
    store.close()


def _request(source: Path | str, **kw: object) -> LiveRequest:
    return LiveRequest(str(source), (ZONE,), "tester", delay_ms=800, **kw)  # type: ignore[arg-type]


async def test_a_file_played_as_if_live_reaches_every_live_cluster_intact_and_in_step(rig: LiveRig) -> None:
    tone = generate_tone(3.0, path=rig.tmp / "tone.wav")
    report = await stream_live(rig.controller, _request(tone))
    simulated = set(rig.fleet.devices)
    assert {d: r for d, r in report.skipped.items() if d in simulated} == {rig.legacy: NO_LIVE}
    assert {r for d, r in report.skipped.items() if d not in simulated} == {OFFLINE}
    live = {d: c for d, c in report.clusters.items() if d in simulated and d != rig.legacy}
    assert all(c.reason == "stopped" and c.played == report.frames for c in live.values()), [
        (c.device_id, c.reason, c.played, c.lost, c.underruns, c.started_ms, c.ended_ms)
        for c in live.values()
    ]
    assert report.frames in (8, 9) and report.audio_ms >= 3000  # 3 s in 400 ms frames, and the padding
    outputs = {d: rig.fleet.devices[d].output for d in live}
    for device_id, output in outputs.items():
        assert [f.seq for f in output.live_frames] == list(range(report.frames)), device_id
    assert rig.fleet.devices[rig.legacy].output.live_frames == []
    # In step: one frame leaves every cluster within a few ms, whatever their clock offsets.
    spreads = [
        max(o.live_frames[i].host_ms for o in outputs.values())
        - min(o.live_frames[i].host_ms for o in outputs.values())
        for i in range(report.frames)
    ]
    assert statistics.median(spreads) < 50
    # The store keeps who started it, from where, and every cluster's part.
    store = rig.controller.store
    record = store.live.get(report.stream_id)
    assert (record.actor, record.source, record.end_reason) == ("tester", str(tone), "finished")
    assert record.ended_at is not None and record.frames == report.frames and store.live.running() == []
    rows = {r.device_id: r for r in store.live.clusters(report.stream_id)}
    assert rows[rig.legacy].skipped == NO_LIVE
    assert all(rows[d].played == report.frames and rows[d].reason == "stopped" for d in live)
    # What one cluster received decodes, with real ffmpeg, to the whole tone.
    sample = next(iter(outputs.values()))
    packets = [p for frame in sample.live_frames for p in frame.packets]
    decoded = rig.tmp / "received.opus"
    decoded.write_bytes(ogg_opus(packets, samples_per_packet=960))
    heard = measure(decoded, context="received live audio")
    assert abs(heard.duration_ms - 3000) <= 100
    assert not heard.loudness.silent and heard.loudness.integrated_lufs > -30


async def test_an_unreachable_url_fails_before_anything_is_sent(rig: LiveRig) -> None:
    with pytest.raises(LiveSourceError, match="cannot reach"):
        await stream_live(rig.controller, _request("http://127.0.0.1:9/vov1.ogg"))
    assert all(d.output.live_frames == [] and not d.agent.live_streams() for d in rig.fleet.devices.values())


async def test_a_non_audio_file_fails_before_anything_is_sent(rig: LiveRig) -> None:
    text = rig.tmp / "not-audio.ogg"
    text.write_text("<html>not a radio</html>")
    with pytest.raises(LiveSourceError, match="not an audio stream"):
        await stream_live(rig.controller, _request(text))


async def test_an_emergency_stream_preempts_a_bulletin_which_resumes_after_it(rig: LiveRig) -> None:
    controller, live_ids = rig.controller, [d for d in rig.fleet.devices if d != rig.legacy]
    speech = generate_tone(
        10.0, path=rig.tmp / "tin-tuc.wav"
    )  # outlasts the stream's start on a busy machine
    clock = controller.clock
    bulletin, _ = import_bulletin(controller.store, controller.settings, clock, speech, "Tin tức")
    request = BroadcastRequest(bulletin.id, tuple(rig.fleet.devices), on_preempt=PreemptPolicy.RESUME)
    broadcast = asyncio.create_task(controller.broadcast(request))
    await wait_until(
        lambda: all(isinstance(rig.fleet.devices[d].agent.player.current, Job) for d in live_ids),
        "the bulletin playing everywhere",
    )
    alarm = generate_tone(2.0, path=rig.tmp / "alarm.wav", freq_hz=880)
    report = await stream_live(controller, _request(alarm, priority=Priority.EMERGENCY))
    assert all(report.clusters[d].played == report.frames for d in live_ids)
    result = await broadcast
    assert result.played == len(rig.fleet.devices), result.counts
    for device_id in live_ids:
        output = rig.fleet.devices[device_id].output
        assert len(output.started_ms) == 2  # the bulletin began, and resumed after the live stream
        assert output.live_frames[0].host_ms < output.started_ms[1]


async def test_a_stopped_session_stops_every_cluster(rig: LiveRig) -> None:
    tone = generate_tone(30.0, path=rig.tmp / "long.wav")
    stop = asyncio.Event()
    task = asyncio.create_task(stream_live(rig.controller, _request(tone), stop=stop))
    live_ids = [d for d in rig.fleet.devices if d != rig.legacy]

    def all_playing() -> bool:
        return all(rig.fleet.devices[d].agent.player.current is not None for d in live_ids)

    await wait_until(all_playing, "the stream queued everywhere")
    stop.set()
    report = await task
    assert report.end_reason == "stopped" and report.listening == 0
    assert {report.clusters[d].reason for d in live_ids} == {"stopped"}
    for device_id in live_ids:
        agent = rig.fleet.devices[device_id].agent
        # Each cluster plays out its buffer, then stops.
        await wait_until(lambda a=agent: a.player.current is None, "the stream ended")
        assert not agent.live_streams()


async def test_a_frame_forged_by_a_broker_client_without_the_key_is_ignored_and_counted(rig: LiveRig) -> None:
    tone = generate_tone(3.0, path=rig.tmp / "tone.wav")
    task = asyncio.create_task(stream_live(rig.controller, _request(tone)))
    live_ids = [d for d in rig.fleet.devices if d != rig.legacy]
    agents = [rig.fleet.devices[d].agent for d in live_ids]
    await wait_until(lambda: all(a.live_streams() for a in agents), "the stream announced everywhere")
    stream = agents[0].live_streams()[0]
    forged = LiveFrame(3, to_ms(rig.controller.clock.now()), (b"EVIL" * 20,))
    payload = pack_frame(forged, stream, Ed25519PrivateKey.generate())  # a key of its own

    async def ignore(_: Incoming) -> None:
        return None

    intruder = Link(rig.controller.settings.broker_address, ignore, client_id="intruder")
    async with connected(intruder):
        await intruder.publish(live_topic(stream), payload, qos=1)
    report = await task
    for device_id in live_ids:
        assert report.clusters[device_id].forged == 1
        played = [p for f in rig.fleet.devices[device_id].output.live_frames for p in f.packets]
        assert b"EVIL" * 20 not in played and len(played) >= 150


# -- relays from a real Icecast ------------------------------------------------------------------


@pytest.fixture
def icecast() -> Iterator[Icecast]:
    with running_icecast() as server:
        yield server


def _decoded(rig: LiveRig, device_id: str, name: str) -> Measurement:
    packets = [p for frame in rig.fleet.devices[device_id].output.live_frames for p in frame.packets]
    path = rig.tmp / name
    path.write_bytes(ogg_opus(packets, samples_per_packet=960))
    return measure(path, context="received live audio")


async def test_a_relay_of_an_icecast_station_reaches_the_clusters_intact(
    rig: LiveRig, icecast: Icecast
) -> None:
    with icecast.feed("vov1.ogg"):
        request = _request(icecast.mount_url("vov1.ogg"), duration_s=3.0)
        report = await stream_live(rig.controller, request)
    assert report.end_reason == "finished" and report.audio_ms >= 3000
    live_ids = [d for d in rig.fleet.devices if d != rig.legacy]
    for device_id in live_ids:
        assert report.clusters[device_id].played == report.frames
    heard = _decoded(rig, live_ids[0], "relayed.opus")
    assert abs(heard.duration_ms - report.audio_ms) <= 100
    assert not heard.loudness.silent and heard.loudness.integrated_lufs > -30
    assert rig.controller.store.live.get(report.stream_id).source == request.source


async def test_a_page_that_is_not_audio_is_refused_and_nothing_plays(rig: LiveRig, icecast: Icecast) -> None:
    (icecast.directory / "web" / "tin-tuc.html").write_text("<html>Tin tức</html>", encoding="utf-8")
    with pytest.raises(LiveSourceError, match="not an audio stream"):
        await stream_live(rig.controller, _request(icecast.mount_url("tin-tuc.html")))
    assert rig.controller.store.live.latest() == []
    assert all(d.output.live_frames == [] for d in rig.fleet.devices.values())


async def test_a_stalling_station_ends_the_relay_and_every_cluster_stops(
    rig: LiveRig, icecast: Icecast
) -> None:
    live_ids = [d for d in rig.fleet.devices if d != rig.legacy]
    agents = [rig.fleet.devices[d].agent for d in live_ids]
    with icecast.feed("vov1.ogg") as feeder:
        request = _request(icecast.mount_url("vov1.ogg"), stall_s=2.0)
        task = asyncio.create_task(stream_live(rig.controller, request))
        await wait_until(lambda: all(rig.fleet.devices[d].output.live_frames for d in live_ids), "audio")
        feeder.send_signal(signal.SIGSTOP)  # the station's encoder hangs; Icecast keeps the connection
        with pytest.raises(SourceStalled, match="sent no audio for 2 s"):
            await task
    await wait_until(lambda: not any(a.live_streams() for a in agents), "every cluster stopped")
    record = rig.controller.store.live.latest()[0]
    assert record.end_reason == "source_failed" and record.ended_at is not None


async def test_a_relay_falls_back_to_silence_while_the_station_is_away_and_returns_with_it(
    rig: LiveRig, icecast: Icecast
) -> None:
    live_ids = [d for d in rig.fleet.devices if d != rig.legacy]
    outputs = [rig.fleet.devices[d].output for d in live_ids]
    stop = asyncio.Event()
    with icecast.feed("vov1.ogg") as feeder:
        request = _request(icecast.mount_url("vov1.ogg"), stall_s=1.5, fallback_s=30.0)
        task = asyncio.create_task(stream_live(rig.controller, request, stop=stop))
        await wait_until(lambda: all(o.live_frames for o in outputs), "the relay on air")
        feeder.send_signal(signal.SIGSTOP)  # the station's encoder hangs
        silent = b"\xf8\xff\xfe"
        await wait_until(lambda: all(silent in o.live_frames[-1].packets for o in outputs), "silence on air")
        assert not task.done() and all(
            a.agent.live_streams() for a in rig.fleet.devices.values() if a.output in outputs
        )
        feeder.send_signal(signal.SIGCONT)  # the station is back: so is its audio
        await wait_until(lambda: all(silent not in o.live_frames[-1].packets for o in outputs), "the station")
        stop.set()
        report = await task
    assert report.end_reason == "stopped" and report.source_outages == 1
    assert all(report.clusters[d].reason == "stopped" for d in live_ids)


async def test_a_cluster_that_comes_online_mid_stream_joins_at_the_live_point_in_step(rig: LiveRig) -> None:
    live_ids = [d for d in rig.fleet.devices if d != rig.legacy]
    late_id, others = live_ids[0], live_ids[1:]
    running = next(t for t in asyncio.all_tasks() if t.get_name() == late_id)
    running.cancel()  # the cluster is off when the stream starts
    await asyncio.wait([running])
    tone = generate_tone(12.0, path=rig.tmp / "long.wav")
    task = asyncio.create_task(stream_live(rig.controller, _request(tone)))
    first = rig.fleet.devices[others[0]].output
    await wait_until(lambda: len(first.live_frames) >= 5, "two seconds on air")
    late = rig.fleet.rebuild(late_id)  # powered on: a fresh agent, its persistent session on the broker
    joined = asyncio.create_task(late.agent.run())
    try:
        report = await task
    finally:
        joined.cancel()
        await asyncio.wait([joined])
    played = late.output.live_frames
    assert played and played[0].seq >= 5 and report.clusters[late_id].reason == "stopped"
    assert [f.seq for f in played] == list(range(played[0].seq, report.frames))
    at = {f.seq: f.host_ms for f in first.live_frames}
    assert max(abs(f.host_ms - at[f.seq]) for f in played) < 50  # in step with its neighbours


async def test_a_stalled_station_is_replaced_by_the_filler_with_an_alert_until_it_returns(
    rig: LiveRig, icecast: Icecast
) -> None:
    live_ids = [d for d in rig.fleet.devices if d != rig.legacy]
    outputs = [rig.fleet.devices[d].output for d in live_ids]
    store = rig.controller.store
    filler_file = generate_tone(3.0, path=rig.tmp / "nhac-hieu.wav", freq_hz=660.0)  # the station's jingle
    filler = set(await filler_packets(str(filler_file)))

    def hearing_filler() -> bool:
        return all(o.live_frames and set(o.live_frames[-1].packets) <= filler for o in outputs)

    def alerted() -> set[str]:
        return {a.device_id for a in store.alerts.all(open_only=True) if a.kind == RELAY_SOURCE_AWAY}

    stop = asyncio.Event()
    with icecast.feed("vov1.ogg") as feeder:
        url = icecast.mount_url("vov1.ogg")
        request = _request(url, stall_s=1.5, fallback_s=30.0, filler=str(filler_file))
        task = asyncio.create_task(stream_live(rig.controller, request, stop=stop))
        await wait_until(lambda: all(o.live_frames for o in outputs), "the relay on air")
        assert not hearing_filler() and alerted() == set()
        feeder.send_signal(signal.SIGSTOP)  # the station's encoder hangs: after 1.5 s, the filler airs
        await wait_until(hearing_filler, "the filler on every cluster")
        await wait_until(lambda: alerted() == set(live_ids), "an alert on every cluster of the relay")
        assert url in store.alerts.all(open_only=True)[0].detail
        feeder.send_signal(signal.SIGCONT)  # the station is back: so is its audio, and the alerts close
        await wait_until(lambda: all(not set(o.live_frames[-1].packets) & filler for o in outputs), "VOV1")
        await wait_until(lambda: alerted() == set(), "the alerts closed")
        stop.set()
        report = await task
    assert report.end_reason == "stopped" and report.source_outages == 1
    # What one cluster heard decodes to audio all along: station, jingle, station.
    heard = _decoded(rig, live_ids[0], "with-filler.opus")
    assert not heard.loudness.silent and heard.loudness.integrated_lufs > -30
