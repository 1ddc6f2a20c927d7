"""Receive benchmark: one MQTT client draining a queue the broker kept for it, aiomqtt's way and the link's.

A persistent session subscribes and leaves; a publisher sends --messages QoS 1 messages of --size
bytes, which a private Mosquitto queues for the session; then the client comes back and the clock
runs until it has received the last one. Four clients, each drained from the same kind of queue:
  plain      aiomqtt as documented: `async for message in client.messages`
  buffered   the same with `aiomqtt_private.buffered_reads` (64 KiB reads)
  delivered  `buffered_reads`, `deliver_to` (a QoS 0/1 PUBLISH parsed and handed straight on) and
             `NoQueue`
  link       what speakerctl's link does: all that and `coalesced_writes` (a turn's PUBACKs in one send)
Prints `<client>_per_s` (messages received per second, median of --repeats) and
`buffered_ratio`, `delivered_ratio`, `link_ratio` against plain, measured in the same run.

Usage: .venv/bin/python bench/receive.py [--messages 30000] [--size 300] [--repeats 3]
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import aiomqtt
import paho.mqtt.client as mqtt

from speakerctl.broker.aiomqtt_private import NoQueue, buffered_reads, coalesced_writes, deliver_to
from speakerctl.broker.mosquitto import MosquittoConfig, MosquittoProcess
from speakerctl.broker.ports import free_port

NODELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
KINDS = ("plain", "buffered", "delivered", "link")


def _client(port: int, session: str, **options: Any) -> aiomqtt.Client:
    return aiomqtt.Client(
        "127.0.0.1", port, identifier=session, clean_session=False, socket_options=NODELAY,
        max_inflight_messages=100, **options,
    )  # fmt: skip


def _fill(port: int, topic: str, count: int, size: int) -> None:
    """Publish `count` QoS 1 messages and wait for the broker's acks (paho, in its own thread)."""
    publisher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-publisher")
    publisher.connect("127.0.0.1", port)
    publisher.loop_start()
    try:
        payload = b"x" * size
        sent = [publisher.publish(f"{topic}/{i % 1000}", payload, qos=1) for i in range(count)]
        for info in sent:
            info.wait_for_publish(60)
    finally:
        publisher.loop_stop()
        publisher.disconnect()


async def drain(port: int, kind: str, session: str, count: int, size: int) -> float:
    """Messages per second for one client of `kind` draining `count` queued messages."""
    topic = f"bench/receive/{session}"
    async with _client(port, session) as client:  # the session and its subscription, kept by the broker
        await client.subscribe(f"{topic}/#", qos=1)
    await asyncio.to_thread(_fill, port, topic, count, size)
    done = asyncio.Event()
    got = 0

    def take(*_: object) -> None:
        nonlocal got
        got += 1
        if got == count:
            done.set()

    linked = kind in ("delivered", "link")
    client = _client(port, session, **({"queue_type": NoQueue} if linked else {}))
    if kind != "plain":
        buffered_reads(client, NODELAY)
    if linked:
        deliver_to(client, take)
    if kind == "link":
        coalesced_writes(client)
    began = time.perf_counter()
    async with client:
        if linked:
            await done.wait()
        else:
            async for _message in client.messages:
                take()
                if done.is_set():
                    break
    return count / (time.perf_counter() - began)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=30_000)
    parser.add_argument("--size", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rates: dict[str, list[float]] = {kind: [] for kind in KINDS}
    with (
        tempfile.TemporaryDirectory(prefix="speakerctl-receive-") as tmp,
        MosquittoProcess(MosquittoConfig(port=free_port()), Path(tmp)) as broker,
    ):
        for _ in range(args.repeats):  # interleaved, so a busy moment does not fall on one kind
            for kind in KINDS:
                session = f"{kind}-{len(rates[kind])}"  # each drain its own session and topics
                rates[kind].append(await drain(broker.port, kind, session, args.messages, args.size))
    medians = {kind: statistics.median(values) for kind, values in rates.items()}
    for kind in KINDS:
        print(f"{kind}_per_s: {medians[kind]:.0f}")
    for kind in KINDS[1:]:
        print(f"{kind}_ratio: {medians[kind] / medians['plain']:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
