"""Which broker to embed: iotcore (rumqttd) or amqtt, measured against a private Mosquitto.

    .venv/bin/python bench/broker_choice.py [--sizes 279 1000] [--rounds 5]

For each broker and N: connect N aiomqtt subscribers (TCP_NODELAY) at once, subscribe them to one
topic at QoS 1, then time the fan-out of one QoS 1 message until all N have it (median of
`--rounds`). With 279 subscribers, also time 1 MiB sent as 64 chunk frames (16 KiB + 44-byte
header, QoS 1) until every subscriber has every frame. Then a quick feature check per broker:
retained message for a late subscriber (one topic, and 279 at once through a wildcard), Last Will
on a killed client, no retained message for a non-matching subscriber, a 17 KB payload, and a
persistent session that was away for over a second. Every broker runs in its own
process on 127.0.0.1 on a free port; ratios are against Mosquitto measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import aiomqtt

from speakerctl.broker.embedded import EmbeddedBroker
from speakerctl.broker.mosquitto import MosquittoConfig, MosquittoProcess
from speakerctl.broker.ports import LOOPBACK, free_port, wait_until_listening

NODELAY = (socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
FLEET = 279
CHUNK_FRAME = 44 + 16 * 1024
CHUNKS = 64
WAIT = 60.0
EXECUTOR_THREADS = 64  # aiomqtt connects in the default executor; 6 threads would be the bottleneck

WILL_CLIENT = """
import sys, time
import paho.mqtt.client as mqtt
host, port, topic = sys.argv[1], int(sys.argv[2]), sys.argv[3]
client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="doomed")
client.will_set(topic, b"offline", qos=1, retain=False)
client.on_connect = lambda *a: print("ready", flush=True)
client.connect(host, port, keepalive=60)
client.loop_forever()
"""

IOTCORE_TOML = """
id = 0
[router]
id = 0
max_connections = 4096
max_outgoing_packet_count = 200
max_segment_size = 8388608
max_segment_count = 4
[v4.1]
name = "v4-1"
listen = "127.0.0.1:{port}"
next_connection_delay_ms = 0
    [v4.1.connections]
    connection_timeout_ms = 60000
    max_payload_size = 20480
    max_inflight_count = 1000
    dynamic_filters = true
"""


# ---------------------------------------------------------------- brokers, each in its own process
@contextlib.contextmanager
def mosquitto() -> Iterator[tuple[int, int]]:
    """A private Mosquitto (the baseline); yields (port, pid)."""
    with tempfile.TemporaryDirectory() as tmp:
        broker = MosquittoProcess(MosquittoConfig(port=free_port()), Path(tmp))
        with broker:
            yield broker.port, broker.pid or 0


@contextlib.contextmanager
def iotcore_kwargs() -> Iterator[tuple[int, int]]:
    """iotcore configured through keyword arguments, as its README shows."""
    from iotcore import Broker

    port = free_port()
    opts = {"max_connections": 4096, "max_payload_size": 20480, "max_inflight_count": 1000}
    with Broker(port=port, listen=LOOPBACK, **opts) as broker:
        yield port, broker._process.pid


@contextlib.contextmanager
def iotcore_toml() -> Iterator[tuple[int, int]]:
    """iotcore with a rumqttd TOML: no pause between accepts, bounded commit log."""
    from iotcore import Broker

    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "rumqttd.toml"
        config.write_text(IOTCORE_TOML.format(port=port))
        with Broker(config_path=str(config)) as broker:
            yield port, broker._process.pid


@contextlib.contextmanager
def embedded() -> Iterator[tuple[int, int]]:
    """speakerctl's EmbeddedBroker: amqtt with its retained and session bugs patched."""
    with EmbeddedBroker() as broker:
        yield broker.port, broker.pid or 0


@contextlib.contextmanager
def amqtt() -> Iterator[tuple[int, int]]:
    """Stock amqtt (anonymous plugin) in a child process, its own event loop like the others."""
    port = free_port()
    argv = [sys.executable, __file__, "--serve-amqtt", str(port)]
    process = subprocess.Popen(argv, stdin=subprocess.PIPE)
    try:
        if not wait_until_listening(LOOPBACK, port, 15, lambda: process.poll() is None):
            raise RuntimeError("amqtt did not start")
        yield port, process.pid
    finally:
        assert process.stdin is not None
        process.stdin.close()
        process.terminate()
        process.wait(10)


def serve_amqtt(port: int) -> None:
    """Child entry: run amqtt on `port` until stdin closes."""
    from amqtt.broker import Broker

    logging.basicConfig(level=logging.WARNING)
    config = {
        "listeners": {"default": {"type": "tcp", "bind": f"{LOOPBACK}:{port}"}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    }

    async def main() -> None:
        broker = Broker(config)
        await broker.start()
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.buffer.read)
        await broker.shutdown()

    asyncio.run(main())


BROKERS: dict[str, Callable[[], contextlib.AbstractContextManager[tuple[int, int]]]] = {
    "mosquitto": mosquitto,
    "iotcore": iotcore_kwargs,
    "iotcore-toml": iotcore_toml,
    "amqtt": amqtt,
    "embedded": embedded,
}


# ---------------------------------------------------------------- measurement helpers
def client(port: int, name: str, **kwargs: Any) -> aiomqtt.Client:
    """An aiomqtt client with TCP_NODELAY."""
    return aiomqtt.Client(LOOPBACK, port, identifier=name, socket_options=[NODELAY], timeout=30, **kwargs)


def rss_mb(pid: int) -> float:
    """Resident memory of `pid` in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Tally:
    """Counts deliveries per key and wakes a waiter when a key reaches its target."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.targets: dict[str, tuple[int, asyncio.Event]] = {}

    def expect(self, key: str, target: int) -> asyncio.Event:
        """An event set once `key` was seen `target` times."""
        event = asyncio.Event()
        self.targets[key] = (target, event)
        return event

    def add(self, key: str) -> None:
        """Record one delivery of `key`."""
        self.counts[key] += 1
        target = self.targets.get(key)
        if target and self.counts[key] >= target[0]:
            target[1].set()


async def receive(sub: aiomqtt.Client, tally: Tally) -> None:
    """Feed every message of `sub` into `tally`, keyed by topic or payload."""
    async for message in sub.messages:
        if str(message.topic).startswith("bench/content"):
            tally.add("content")
        else:
            tally.add(bytes(message.payload).decode())  # type: ignore[arg-type]


async def timed_wait(event: asyncio.Event, tally: Tally, key: str, target: int) -> float | str:
    """Seconds until `event`, or a note of how many arrived before the timeout."""
    start = time.perf_counter()
    try:
        async with asyncio.timeout(WAIT):
            await event.wait()
    except TimeoutError:
        return f"timeout {tally.counts[key]}/{target}"
    return time.perf_counter() - start


@contextlib.asynccontextmanager
async def connected(port: int, n: int, result: dict[str, Any]) -> AsyncIterator[list[Any]]:
    """Connect and subscribe n clients, recording the times, and disconnect them afterwards."""
    subs = [client(port, f"sub-{i}") for i in range(n)]
    start = time.perf_counter()
    await asyncio.gather(*(s.__aenter__() for s in subs))
    result["connect_s"] = time.perf_counter() - start
    start = time.perf_counter()
    await asyncio.gather(*(s.subscribe("bench/#", qos=1) for s in subs))
    result["subscribe_s"] = time.perf_counter() - start
    try:
        yield subs
    finally:
        await asyncio.gather(*(s.__aexit__(None, None, None) for s in subs), return_exceptions=True)


async def fan_out(pub: aiomqtt.Client, tally: Tally, n: int, rounds: int) -> float | str:
    """Median seconds from publish until all n subscribers have one QoS 1 message."""
    times: list[float] = []
    for k in range(rounds):
        key = f"round-{k}"
        event = tally.expect(key, n)
        start = time.perf_counter()
        await pub.publish("bench/fanout", key.encode(), qos=1)
        waited = await timed_wait(event, tally, key, n)
        if isinstance(waited, str):
            return waited
        times.append(time.perf_counter() - start)
    return statistics.median(times)


async def chunked(pub: aiomqtt.Client, tally: Tally, n: int) -> float | str:
    """Seconds until all n subscribers have all 64 frames of 1 MiB of content."""
    event = tally.expect("content", n * CHUNKS)
    frame = os.urandom(CHUNK_FRAME)
    start = time.perf_counter()
    await asyncio.gather(*(pub.publish("bench/content/x", frame, qos=1) for _ in range(CHUNKS)))
    waited = await timed_wait(event, tally, "content", n * CHUNKS)
    return waited if isinstance(waited, str) else time.perf_counter() - start


async def measure(port: int, pid: int, n: int, rounds: int) -> dict[str, Any]:
    """Connect, subscribe, fan-out (and for the fleet size, 1 MiB chunked) times for n clients."""
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(EXECUTOR_THREADS))
    result: dict[str, Any] = {}
    tally = Tally()
    async with (
        connected(port, n, result) as subs,
        client(port, "pub", max_inflight_messages=CHUNKS) as pub,
    ):
        pub.pending_calls_threshold = CHUNKS + 1  # 64 publishes in flight are the point here
        receivers = [asyncio.create_task(receive(s, tally)) for s in subs]
        result["fanout_s"] = await fan_out(pub, tally, n, rounds)
        if n == FLEET:
            result["chunks_1mib_s"] = await chunked(pub, tally, n)
        result["broker_rss_mib"] = rss_mb(pid)
        for task in receivers:
            task.cancel()
        await asyncio.gather(*receivers, return_exceptions=True)
    return result


# ---------------------------------------------------------------- feature checks
async def first_messages(sub: aiomqtt.Client, want: int, seconds: float) -> list[aiomqtt.Message]:
    """Up to `want` messages that arrive within `seconds`."""
    got: list[aiomqtt.Message] = []
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            async for message in sub.messages:
                got.append(message)
                if len(got) >= want:
                    break
    return got


async def retained_late(port: int) -> bool:
    """A retained message reaches a subscriber that arrives after it was published."""
    async with client(port, "r-pub") as pub:
        await pub.publish("feat/status", b"online", qos=1, retain=True)
    async with client(port, "r-sub") as sub:
        await sub.subscribe("feat/status", qos=1)
        return [bytes(m.payload) for m in await first_messages(sub, 1, 3)] == [b"online"]  # type: ignore[arg-type]


async def retained_only_matching(port: int) -> bool:
    """A retained message is not pushed to a new client whose subscription does not match it."""
    async with client(port, "m-pub") as pub, client(port, "m-first") as first:
        await first.subscribe("feat/m/status", qos=1)
        await pub.publish("feat/m/status", b"idle", qos=1, retain=True)
        await first_messages(first, 1, 3)
        async with client(port, "m-new") as newcomer:
            await newcomer.subscribe("feat/m/other", qos=1)
            return await first_messages(newcomer, 1, 1) == []


async def retained_fleet(port: int) -> str:
    """How many of 279 retained statuses a late wildcard subscriber (QoS 1) receives."""
    async with client(port, "f-pub") as pub:
        for i in range(FLEET):
            await pub.publish(f"feat/dev/d{i}/status", b"{}", qos=1, retain=True)
    async with client(port, "f-sub") as sub:
        await sub.subscribe("feat/dev/+/status", qos=1)
        got = await first_messages(sub, FLEET, 5)
    return f"{len({str(m.topic) for m in got})}/{FLEET}"


async def will_on_kill(port: int) -> str:
    """Seconds until the Will of a SIGKILLed client arrives, or 'no'."""
    async with client(port, "w-sub") as sub:
        await sub.subscribe("feat/will", qos=1)
        argv = ["-c", WILL_CLIENT, LOOPBACK, str(port), "feat/will"]
        proc = await asyncio.create_subprocess_exec(sys.executable, *argv, stdout=subprocess.PIPE)
        assert proc.stdout is not None
        await asyncio.wait_for(proc.stdout.readline(), 10)
        start = time.perf_counter()
        proc.kill()
        await proc.wait()
        got = await first_messages(sub, 1, 5)
    return f"{time.perf_counter() - start:.3f}s" if got else "no"


async def big_payload(port: int, size: int = 17 * 1024) -> bool:
    """A 17 KB payload passes."""
    async with client(port, "b-sub") as sub, client(port, "b-pub") as pub:
        await sub.subscribe("feat/big", qos=1)
        await pub.publish("feat/big", os.urandom(size), qos=1)
        return len(await first_messages(sub, 1, 3)) == 1


async def persistent_session(port: int) -> bool:
    """A QoS 1 message published while a persistent-session client was away reaches it later."""
    async with client(port, "p-sub", clean_session=False) as sub:
        await sub.subscribe("feat/queued", qos=1)
    await asyncio.sleep(1.2)  # longer than amqtt's session sweep
    async with client(port, "p-pub") as pub:
        await pub.publish("feat/queued", b"while away", qos=1)
    async with client(port, "p-sub", clean_session=False) as sub:
        return len(await first_messages(sub, 1, 3)) == 1


CHECKS: dict[str, Callable[[int], Awaitable[object]]] = {
    "retained_late": retained_late,
    "retained_279_wildcard_qos1": retained_fleet,
    "retained_only_to_matching": retained_only_matching,
    "will_on_sigkill": will_on_kill,
    "payload_17k": big_payload,
    "persistent_session": persistent_session,
}


async def features(port: int) -> dict[str, Any]:
    """Run every feature check against the broker on `port`; a crash is a result too."""
    results: dict[str, Any] = {}
    for name, check in CHECKS.items():
        try:
            results[name] = await check(port)
        except Exception as exc:
            results[name] = f"error: {type(exc).__name__}: {exc}"
    return results


# ---------------------------------------------------------------- report
def run(names: list[str], sizes: list[int], rounds: int) -> dict[str, dict[str, Any]]:
    """Measure every broker in `names`, each in a fresh process per run."""
    results: dict[str, dict[str, Any]] = {}
    for name in names:
        results[name] = {}
        for n in sizes:
            with BROKERS[name]() as (port, pid):
                results[name][f"n={n}"] = asyncio.run(measure(port, pid, n, rounds))
            print(name, n, results[name][f"n={n}"], file=sys.stderr, flush=True)
        with BROKERS[name]() as (port, _pid):
            results[name]["features"] = asyncio.run(features(port))
    return results


def print_table(results: dict[str, dict[str, Any]]) -> None:
    """One line per broker and measure, with the ratio to Mosquitto."""
    base = results.get("mosquitto", {})
    for name, by_size in results.items():
        for size, values in by_size.items():
            for measure_name, value in values.items():
                ratio = ""
                ref = base.get(size, {}).get(measure_name)
                if isinstance(value, float) and isinstance(ref, float) and ref > 0:
                    ratio = f"x{value / ref:.1f}"
                shown = f"{value:.3f}" if isinstance(value, float) else str(value)
                print(f"{name:13} {size:9} {measure_name:28} {shown:>14} {ratio}")


def main() -> None:
    """Parse arguments, run the measurements, print a table and the raw JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[FLEET, 1000])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--brokers", nargs="+", default=list(BROKERS), choices=list(BROKERS))
    parser.add_argument("--serve-amqtt", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_amqtt:
        serve_amqtt(args.serve_amqtt)
        return
    results = run(args.brokers, args.sizes, args.rounds)
    print_table(results)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
