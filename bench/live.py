"""Live-audio benchmark: a file streamed as if live to a simulated fleet on a real Mosquitto, one run.

Prints `name: value` lines:
  broker_floor_p95_ms        a frame's send time (its last sample captured) → a bare subscriber has it
  live_latency_p50_ms/_p95   capture time → the simulated cluster's output time (play-out delay included)
  live_sync_p99_ms           spread of one frame's output time across the clusters of one commune
  live_egress_ratio          controller bytes out (MQTT framing included) / Opus bytes of the stream
  live_egress_ratio_200ms    the same with 200 ms frames (twice the per-frame signature overhead)
  live_loss_ratio_2pct       audible frame loss with 2 % TCP packet loss on every cluster link
  live_loss_ratio_2pct_drop  the same with 2 % of frames dropped outright (a path that never retransmits)
  live_controller_cpu_pct    CPU of the controller process and its ffmpeg for one stream, % of one core
  live_controller_cpu_pct_per_stream  the same per stream with STREAMS streams at once (no cluster online)
  relay_latency_p50_ms/_p95  a station on a real Icecast: stream position at the relay's input → the
                             simulated cluster's output (bench/relay_latency.py); skipped without icecast2
  relay_over_live_p95_ratio  relay_latency_p95_ms / live_latency_p95_ms of this run (the cost of the relay)
  live_verify_us / live_sign_us  Ed25519 cost per 200 ms frame (cluster / controller)

Usage: .venv/bin/python bench/live.py [--clusters 50] [--seconds 10] [--delay-ms 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import resource
import shutil
import statistics
import struct
import tempfile
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import relay_latency
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from simulator.faults import FaultProfile, FaultyDownlink
from simulator.fleet import Fleet, FleetOptions
from speakerctl.app import runtime
from speakerctl.app.context import load_fleet
from speakerctl.app.live import LiveRequest, stream_live
from speakerctl.audio import generate_speechlike
from speakerctl.broker.link import Handler, Incoming, Link
from speakerctl.broker.mosquitto import MosquittoConfig, MosquittoProcess
from speakerctl.broker.ports import free_port
from speakerctl.config import Settings
from speakerctl.controller.live import LiveReport
from speakerctl.controller.service import Controller
from speakerctl.fleet import load_inventory, provisioning_records, scaled_inventory
from speakerctl.protocol.limits import LIVE_HEADER_SIZE
from speakerctl.protocol.live import LiveFrame, pack_frame, unpack_frame
from speakerctl.security.keys import trusted_path
from speakerctl.store import Store

_HEAD = struct.Struct(">4sIQB")


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Observer:
    """A bare MQTT subscriber on every live topic: when each frame arrived, and its capture time."""

    def __init__(self, settings: Settings) -> None:
        self.arrivals: dict[int, tuple[int, float]] = {}
        self.sent: dict[int, int] = {}
        self.packet_ms = 20
        self.link = Link(settings.broker_address, self._on, client_id="bench-observer")

    async def _on(self, message: Incoming) -> None:
        _, seq, capture_ts, count = _HEAD.unpack_from(message.payload[:LIVE_HEADER_SIZE])
        self.arrivals.setdefault(seq, (capture_ts, time.time_ns() / 1e6))
        self.sent.setdefault(seq, capture_ts + count * self.packet_ms)


def crypto_costs() -> tuple[float, float]:
    """Microseconds to sign and to verify a 200 ms frame (10 × 20 ms packets at 48 kbit/s)."""
    key, frame = Ed25519PrivateKey.generate(), LiveFrame(1, 1_767_225_600_000, (b"x" * 120,) * 10)
    n = 2000
    start = time.perf_counter()
    payloads = [pack_frame(frame, "bench", key) for _ in range(n)]
    sign = (time.perf_counter() - start) / n * 1e6
    start = time.perf_counter()
    for payload in payloads:
        unpack_frame(payload, "bench", key.public_key())
    return sign, (time.perf_counter() - start) / n * 1e6


def _cpu_s() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


STREAMS = 3


async def controller_cpu(controller: Controller, request: LiveRequest, streams: int = 1) -> float:
    """% of one core the controller and its ffmpeg use per stream, `streams` at once (no cluster online:
    the fleet is excluded)."""
    wall, cpu = time.perf_counter(), _cpu_s()
    await asyncio.gather(*(stream_live(controller, request) for _ in range(streams)))
    return 100 * (_cpu_s() - cpu) / (time.perf_counter() - wall) / streams


async def relay_figures(
    controller: Controller, fleet: Fleet, request: LiveRequest, root: Path
) -> dict[str, float]:
    """Relay latency from a real Icecast station through the tap (nothing without icecast2)."""
    if shutil.which("icecast2") is None:
        print("relay_latency: skipped (icecast2 is not installed)")
        return {}
    for device in fleet.devices.values():
        device.output.live_frames.clear()
    with relay_latency.running_icecast() as icecast, relay_latency.station(icecast, root, 60):
        tap = relay_latency.Tap(icecast.port)
        async with tap.running():
            relayed = replace(request, source=tap.url, duration_s=request.duration_s or 20.0)
            await stream_live(controller, relayed)
    found = await asyncio.to_thread(relay_latency.latencies, fleet, tap, root)
    if not found:
        return {}
    return {"relay_latency_p50_ms": statistics.median(found), "relay_latency_p95_ms": _pct(found, 0.95)}


def latency_and_sync(fleet: Fleet, zones: dict[str, str], observer: Observer) -> dict[str, float]:
    """Capture → output latency over every played frame, and per-commune output spread per frame."""
    latencies: list[float] = []
    by_frame: dict[tuple[str, int], list[float]] = defaultdict(list)
    for device_id, device in fleet.devices.items():
        for played in device.output.live_frames:
            capture = observer.arrivals.get(played.seq)
            if capture is not None:
                latencies.append(played.host_ms - capture[0])
                by_frame[(zones[device_id], played.seq)].append(played.host_ms)
    spreads = [max(v) - min(v) for v in by_frame.values() if len(v) > 1]
    floor = [arrived - observer.sent[seq] for seq, (_, arrived) in observer.arrivals.items()]
    return {
        "broker_floor_p95_ms": _pct(floor, 0.95),
        "live_latency_p50_ms": statistics.median(latencies),
        "live_latency_p95_ms": _pct(latencies, 0.95),
        "live_sync_p99_ms": _pct(spreads, 0.99) if spreads else 0.0,
    }


def audible_loss(fleet: Fleet, report: LiveReport) -> float:
    """Share of the stream's frames the clusters that played it did not play (concealed or missed)."""
    played = [len(d.output.live_frames) for d in fleet.devices.values() if d.output.live_frames]
    return 1 - sum(played) / (len(played) * report.frames)


def faulty_links(fleet: Fleet, seed: int = 1) -> list[FaultyDownlink]:
    """Put a fault injector on every cluster's downlink (no faults yet); set `.profile` to change them."""
    rng, links = random.Random(seed), []

    def wrap(inner: Handler) -> Handler:
        links.append(FaultyDownlink(inner, FaultProfile(), random.Random(rng.random())))
        return links[-1]

    for device in fleet.devices.values():
        device.agent.link.wrap_handler(wrap)
    return links


def _set_faults(fleet: Fleet, links: list[FaultyDownlink], profile: FaultProfile) -> None:
    for device in fleet.devices.values():
        device.output.live_frames.clear()
    for link in links:
        link.profile = profile


async def bench(clusters: int, seconds: float, delay_ms: int, root: Path) -> dict[str, float]:
    """Every figure of one run."""
    results: dict[str, float] = {}
    results["live_sign_us"], results["live_verify_us"] = crypto_costs()
    with MosquittoProcess(MosquittoConfig(port=free_port()), root / "mosquitto") as broker:
        settings = Settings(data_dir=root / "controller", broker=str(broker.url))
        inventory = scaled_inventory(load_inventory(), clusters)
        store = Store.open(settings.db_url)
        load_fleet(store, inventory)
        controller = runtime.controller(runtime.context(settings), store)
        source = generate_speechlike(seconds, root / "speech.wav")
        request = LiveRequest(str(source), (inventory.root.id,), "bench", delay_ms=delay_ms)
        options = FleetOptions(
            root=root / "fleet", trust_file=trusted_path(settings.keys_dir), max_clock_offset_ms=2_000
        )
        fleet = Fleet(provisioning_records(inventory), settings.broker_address, options)
        zones = {d.id: d.zone for d in inventory.devices}
        observer = Observer(settings)
        await observer.link.subscribe(["pa/v1/live/+"])
        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(observer.link.run())]
            async with controller.running():
                results["live_controller_cpu_pct"] = await controller_cpu(controller, request)
                per_stream = await controller_cpu(controller, request, STREAMS)
                results["live_controller_cpu_pct_per_stream"] = per_stream
                tasks.append(tg.create_task(fleet.run()))
                await fleet.wait_online(300)
                await controller._settle_retained()
                observer.arrivals.clear()
                observer.sent.clear()
                report = await stream_live(controller, request)
                results |= latency_and_sync(fleet, zones, observer)
                results["live_egress_ratio"] = report.egress_bytes / _opus_bytes(fleet)
                results["live_clusters_played"] = sum(c.played > 0 for c in report.clusters.values())
                timed = replace(request, duration_s=max(seconds, 12.0))
                results |= await relay_figures(controller, fleet, timed, root)
                if "relay_latency_p95_ms" in results:
                    ratio = results["relay_latency_p95_ms"] / results["live_latency_p95_ms"]
                    results["relay_over_live_p95_ratio"] = ratio
                links = faulty_links(fleet)
                _set_faults(fleet, links, FaultProfile())
                report = await stream_live(controller, replace(request, frame_ms=200))
                results["live_egress_ratio_200ms"] = report.egress_bytes / _opus_bytes(fleet)
                _set_faults(fleet, links, FaultProfile(packet_loss=0.02))
                report = await stream_live(controller, request)
                results["live_loss_ratio_2pct"] = audible_loss(fleet, report)
                _set_faults(fleet, links, FaultProfile(live_drop=0.02))
                report = await stream_live(controller, request)
                results["live_loss_ratio_2pct_drop"] = audible_loss(fleet, report)
            for task in tasks:
                task.cancel()
        store.close()
    return results


def _opus_bytes(fleet: Fleet) -> int:
    """Opus bytes of the stream, from one cluster that played all of it."""
    best = max(fleet.devices.values(), key=lambda d: len(d.output.live_frames))
    return sum(len(p) for frame in best.output.live_frames for p in frame.packets)


def main() -> None:
    """Parse arguments, run, print `name: value` lines."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clusters", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--delay-ms", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="speakerctl-bench-live-") as tmp:
        results = asyncio.run(bench(args.clusters, args.seconds, args.delay_ms, Path(tmp)))
    print(f"clusters: {args.clusters}")
    for name, value in results.items():
        print(f"{name}: {value:.4g}")


if __name__ == "__main__":
    main()
