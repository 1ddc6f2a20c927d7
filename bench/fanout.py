"""Fan-out benchmark: the broker's own floor against speakerctl's end-to-end broadcast, same run.

Prints, per fleet size N:
  floor_N_s        one QoS 1 publish to N bare MQTT clients until every one has acked (median of 5);
                   the clients and the publisher receive as speakerctl's link does (aiomqtt_private)
  e2e_N_s          speakerctl broadcast of a cached bulletin: command until every cluster plays (median of 3)
  fanout_ratio_N   e2e / floor
and, for a fresh 1 MB bulletin to 279 clusters:
  egress_ratio_279       controller egress bytes / bytes of the encodings the fleet needed
  egress_per_bulletin_279  controller egress bytes / bytes of one encoding (the fleet needs two)

Usage: .venv/bin/python bench/fanout.py [--sizes 279,1000] [--broker embedded|mosquitto]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import socket
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import aiomqtt

from simulator.fleet import Fleet, FleetOptions
from speakerctl.app import runtime
from speakerctl.app.context import load_fleet
from speakerctl.broker.aiomqtt_private import NoQueue, Sink, buffered_reads, coalesced_writes, deliver_to
from speakerctl.broker.embedded import EmbeddedBroker
from speakerctl.broker.mosquitto import MosquittoConfig, MosquittoProcess, find_mosquitto
from speakerctl.broker.ports import free_port
from speakerctl.config import Settings
from speakerctl.controller.service import BroadcastRequest
from speakerctl.fleet import load_inventory, provisioning_records, scaled_inventory
from speakerctl.mailbox import Mailbox
from speakerctl.security.keys import trusted_path
from speakerctl.store import Store, VariantInfo

NODELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
MB = 1_000_000


def _client(port: int, sink: Sink) -> aiomqtt.Client:
    """A bare client receiving as speakerctl's link does (`aiomqtt_private`): messages straight to
    `sink`, 64 KiB reads, a turn's packets written at once. The floor's clients must be no slower
    than the link's, or the floor is raised by the client library rather than set by the broker."""
    client = aiomqtt.Client("127.0.0.1", port, socket_options=NODELAY, queue_type=NoQueue)
    deliver_to(client, sink)
    buffered_reads(client, NODELAY)
    coalesced_writes(client)
    return client


async def _bare_client(port: int, topic: str, ready: asyncio.Event, stop: asyncio.Event) -> None:
    inbox: Mailbox[bytes] = Mailbox()
    async with _client(port, lambda _topic, payload, *_: inbox.put_nowait(payload)) as client:
        await client.subscribe(topic, qos=1)
        ready.set()
        while not stop.is_set():
            await client.publish(f"bench/ack/{id(client)}", await inbox.get(), qos=1)


async def broker_floor(port: int, n: int, repeats: int = 5) -> float:
    """Median seconds from one QoS 1 publish to N acks from N bare clients."""
    stop = asyncio.Event()
    readies = [asyncio.Event() for _ in range(n)]
    acks: list[bytes] = []
    all_in = asyncio.Event()

    def ack(_topic: str, payload: bytes, *_: object) -> None:
        acks.append(payload)
        if len(acks) == n:
            all_in.set()

    async with _client(port, ack) as pub, asyncio.TaskGroup() as tg:
        await pub.subscribe("bench/ack/+", qos=1)
        tasks = [tg.create_task(_bare_client(port, "bench/fanout", r, stop)) for r in readies]
        await asyncio.gather(*(r.wait() for r in readies))
        times = []
        for i in range(repeats):
            acks.clear()
            all_in.clear()
            start = time.perf_counter()
            await pub.publish("bench/fanout", str(i).encode(), qos=1)
            await all_in.wait()
            times.append(time.perf_counter() - start)
            assert acks == [str(i).encode()] * n
        stop.set()
        for task in tasks:
            task.cancel()
    return statistics.median(times)


def _bulletin(store: Store, content_dir: Path, sizes: dict[str, int], duration_ms: int) -> int:
    variants = []
    for codec, size in sizes.items():
        data = os.urandom(size)
        sha = hashlib.sha256(data).hexdigest()
        folder = content_dir / sha[:2]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{sha}.{'ogg' if codec == 'opus' else codec}").write_bytes(data)
        variants.append(VariantInfo(codec, "ogg" if codec == "opus" else codec, 24, sha, size, duration_ms))
    first = variants[0]
    return store.bulletins.add(
        "bench",
        first.sha256,
        first.codec,
        first.container,
        24,
        duration_ms,
        first.size,
        "bench",
        "bench",
        datetime.now(UTC),
        variants=variants,
    ).id


async def speakerctl_e2e(url: str, n: int, root: Path, repeats: int = 3) -> tuple[float, dict[str, float]]:
    """Median seconds from broadcast to all-playing for a cached bulletin; and egress for a fresh one."""
    inventory = scaled_inventory(load_inventory(), n)
    settings = Settings(data_dir=root / f"ctl-{n}", broker=url, broadcast_timeout_s=60)
    store = Store.open(settings.db_url)
    load_fleet(store, inventory)
    controller = runtime.controller(
        runtime.context(settings), store
    )  # creates the signing key clusters are provisioned with
    options = FleetOptions(
        root=root / f"fleet-{n}", time_scale=50, trust_file=trusted_path(settings.keys_dir)
    )
    fleet = Fleet(provisioning_records(inventory), settings.broker_address, options)
    egress: dict[str, float] = {}
    async with asyncio.TaskGroup() as tg:
        fleet_task = tg.create_task(fleet.run())
        await fleet.wait_online(120)
        async with controller.running():
            fresh = _bulletin(store, settings.content_dir, {"opus": MB, "mp3": MB}, 1000)
            first = await controller.broadcast(BroadcastRequest(fresh, (inventory.root.id,)))
            egress = {
                "egress_ratio": first.egress_bytes / (2 * MB),
                "egress_per_bulletin": first.egress_bytes / MB,
                "played": first.played,
            }
            small = _bulletin(store, settings.content_dir, {"opus": 20_000, "mp3": 20_000}, 1000)
            await controller.broadcast(BroadcastRequest(small, (inventory.root.id,)))  # warms the caches
            times = []
            for _ in range(repeats):
                result = await controller.broadcast(BroadcastRequest(small, (inventory.root.id,)))
                assert result.reach_latency_s is not None, result.counts
                times.append(result.reach_latency_s)
        fleet_task.cancel()
    store.close()
    return statistics.median(times), egress


def _broker(kind: str, root: Path) -> EmbeddedBroker | MosquittoProcess:
    if kind == "mosquitto" and find_mosquitto():
        return MosquittoProcess(MosquittoConfig(port=free_port()), root / "mosq")
    return EmbeddedBroker()


async def _run(sizes: list[int], broker_url: str, port: int, root: Path) -> list[tuple[str, float]]:
    lines: list[tuple[str, float]] = []
    for n in sizes:
        floor = await broker_floor(port, n)
        e2e, egress = await speakerctl_e2e(broker_url, n, root)
        lines += [(f"floor_{n}_s", floor), (f"e2e_{n}_s", e2e), (f"fanout_ratio_{n}", e2e / floor)]
        if n == 279:
            lines += [
                ("egress_ratio_279", egress["egress_ratio"]),
                ("egress_per_bulletin_279", egress["egress_per_bulletin"]),
                ("egress_played_279", egress["played"]),
            ]
    return lines


def main() -> None:
    """Run the benchmark and print `name: value` lines."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="279,1000")
    parser.add_argument("--broker", choices=["mosquitto", "embedded"], default="mosquitto")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    with (
        tempfile.TemporaryDirectory(prefix="speakerctl-bench-") as tmp,
        _broker(args.broker, Path(tmp)) as broker,
    ):
        print(f"broker: {type(broker).__name__} at {broker.url}")
        for name, value in asyncio.run(_run(sizes, broker.url, broker.port, Path(tmp))):
            print(f"{name}: {value:.4g}")


if __name__ == "__main__":
    main()
