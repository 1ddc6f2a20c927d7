"""The MQTT link at its edges: no broker, wrong credentials, a broker that goes away and comes back."""

from __future__ import annotations

import asyncio
import logging
import math
import os
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path

import aiomqtt
import pytest
from waiting import wait_until

from speakerctl.app.context import open_store
from speakerctl.broker import link as link_module
from speakerctl.broker.address import BrokerAddress
from speakerctl.broker.aiomqtt_private import (
    CHUNK,
    TESTED,
    BufferedSocket,
    NoQueue,
    buffered_reads,
    coalesced_writes,
    deliver_to,
    raw_socket,
)
from speakerctl.broker.link import Backoff, Incoming, Link
from speakerctl.broker.mosquitto import MosquittoProcess
from speakerctl.broker.ports import free_port
from speakerctl.config import Settings
from speakerctl.controller.service import Controller
from speakerctl.errors import AckTimeout, AuthError, ConfigError, LinkError

FAST = Backoff(first=0.05, cap=0.2)


class Inbox:
    """Collects what a link receives."""

    def __init__(self) -> None:
        self.messages: list[Incoming] = []
        self.arrived = asyncio.Event()

    async def __call__(self, message: Incoming) -> None:
        self.messages.append(message)
        self.arrived.set()


async def test_no_broker_fails_fast_with_the_address_and_a_hint(tmp_path: Path) -> None:
    port = free_port()
    settings = Settings(data_dir=tmp_path, broker=f"mqtt://127.0.0.1:{port}")
    controller = Controller(settings, open_store(settings))
    with pytest.raises(ExceptionGroup) as caught:
        async with controller.running():
            pytest.fail("connected to a broker that does not exist")
    error = caught.value.exceptions[0]
    assert isinstance(error, LinkError)
    assert f"127.0.0.1:{port}" in str(error) and "--broker" in error.hint


async def test_wrong_password_is_an_auth_error_not_a_retry_loop(
    mosquitto_auth: Callable[..., MosquittoProcess],
) -> None:
    broker = mosquitto_auth({"controller": "đúng-mật-khẩu"}, ["user controller", "topic readwrite #"])
    address = BrokerAddress(broker.host, broker.port, "controller", "sai-mật-khẩu")
    link = Link(address, Inbox(), backoff=FAST)
    with pytest.raises(AuthError, match="refused the login"):
        await asyncio.wait_for(link.run(), 10)


async def test_right_password_connects(mosquitto_auth: Callable[..., MosquittoProcess]) -> None:
    broker = mosquitto_auth({"controller": "đúng-mật-khẩu"}, ["user controller", "topic readwrite #"])
    inbox = Inbox()
    link = Link(BrokerAddress(broker.host, broker.port, "controller", "đúng-mật-khẩu"), inbox)
    await link.subscribe(["pa/v1/test"])
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(link.run())
        await link.wait_connected(10)
        await link.publish("pa/v1/test", "chào".encode())
        await asyncio.wait_for(inbox.arrived.wait(), 5)
        task.cancel()
    assert inbox.messages[0].payload.decode() == "chào"


async def test_link_heals_after_the_broker_restarts(mosquitto: MosquittoProcess) -> None:
    inbox = Inbox()
    link = Link(BrokerAddress(mosquitto.host, mosquitto.port), inbox, client_id="healer", backoff=FAST)
    await link.subscribe(["pa/v1/heal"])
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(link.run())
        await link.wait_connected(10)
        mosquitto.stop()
        await asyncio.wait_for(link.disconnected.wait(), 30)
        assert not link.connected.is_set()
        with pytest.raises(LinkError):
            await link.publish("pa/v1/heal", b"lost", timeout=0.2)
        mosquitto.start()  # same port, fresh broker: no session survives, so we must resubscribe
        await link.wait_connected(10)
        sender = Link(BrokerAddress(mosquitto.host, mosquitto.port), Inbox())
        sender_task = tg.create_task(sender.run())
        await sender.publish("pa/v1/heal", b"back", timeout=5)
        await asyncio.wait_for(inbox.arrived.wait(), 5)
        sender_task.cancel()
        task.cancel()
    assert link.connects == 2
    assert [m.payload for m in inbox.messages] == [b"back"]


async def test_an_unacknowledged_publish_fails_as_soon_as_its_connection_drops(
    mosquitto: MosquittoProcess,
) -> None:
    # aiomqtt waited out the whole timeout for the ack of a dead connection, which the next
    # connection never resends: a cluster's outbox stood still for 30 s after a broker restart.
    link = Link(BrokerAddress(mosquitto.host, mosquitto.port), Inbox(), backoff=FAST)
    pid = mosquitto.pid
    assert pid is not None
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(link.run())
        await link.wait_connected(10)
        os.kill(pid, signal.SIGSTOP)  # the broker hears nothing and acks nothing
        try:
            publish = asyncio.create_task(link.publish("pa/v1/ack", b"x", timeout=30))
            await wait_until(lambda: _awaiting_ack(link), "the PUBLISH on the wire, its ack outstanding")
            link.drop()
            with pytest.raises(LinkError, match="dropped"):
                await asyncio.wait_for(publish, 5)
        finally:
            os.kill(pid, signal.SIGCONT)
        task.cancel()


async def test_an_announcement_acknowledged_late_does_not_end_the_session(
    mosquitto: MosquittoProcess,
) -> None:
    pid = mosquitto.pid
    assert pid is not None
    inbox = Inbox()

    async def announce() -> None:  # as a cluster announces itself, the broker too busy to answer
        os.kill(pid, signal.SIGSTOP)
        try:
            await link.publish("pa/v1/late/status", b"online", timeout=0.3)
        finally:
            os.kill(pid, signal.SIGCONT)

    link = Link(BrokerAddress(mosquitto.host, mosquitto.port), inbox, backoff=FAST, on_connect=announce)
    await link.subscribe(["pa/v1/late/#"])
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(link.run())
        await link.wait_connected(10)
        await asyncio.wait_for(inbox.arrived.wait(), 10)  # its own announcement, sent after all
        task.cancel()
    assert link.connects == 1
    assert [m.payload for m in inbox.messages] == [b"online"]


async def test_an_unsuback_that_comes_after_the_wait_logs_no_traceback(
    mosquitto: MosquittoProcess, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(link_module, "_ACK_S", 0.3)
    pid = mosquitto.pid
    assert pid is not None
    link = Link(BrokerAddress(mosquitto.host, mosquitto.port), Inbox(), backoff=FAST)
    await link.subscribe(["pa/v1/leaving"])
    caplog.set_level(logging.DEBUG, logger="speakerctl.broker.link")
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(link.run())
        await link.wait_connected(10)
        os.kill(pid, signal.SIGSTOP)  # the UNSUBSCRIBE waits in the kernel, unanswered
        try:
            with pytest.raises(AckTimeout):
                await link.unsubscribe(["pa/v1/leaving"])
        finally:
            os.kill(pid, signal.SIGCONT)
        # The broker answers in order: once this PUBACK is in, so is the late UNSUBACK.
        await link.publish("pa/v1/after", b"x", timeout=10)
        task.cancel()
    late = [r for r in caplog.records if "Unexpected message ID" in r.getMessage()]
    assert late and all(r.levelno == logging.DEBUG and r.name == "speakerctl.broker.link" for r in late)
    assert not any(r.exc_info for r in caplog.records)


def _awaiting_ack(link: Link) -> bool:
    return link.awaiting_acks > 0


async def test_aiomqtt_behaves_as_the_link_relies_on(mosquitto: MosquittoProcess) -> None:
    """What speakerctl/broker/aiomqtt_private.py documents; if this fails, an aiomqtt upgrade broke it."""
    assert aiomqtt.__version_tuple__[:2] == TESTED, "re-check aiomqtt_private.py, then update TESTED"
    reader = aiomqtt.Client(mosquitto.host, mosquitto.port, queue_type=NoQueue)
    got: list[tuple[str, bytes, bool, float]] = []
    deliver_to(reader, lambda *message: got.append(message))
    buffered_reads(reader, [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])
    coalesced_writes(reader)
    # Sizes around the buffer's: packets cut at a chunk's end, one larger than a chunk.
    sent = [bytes([n % 251]) * size for n, size in enumerate([1, 300, CHUNK - 5, 7, 2 * CHUNK + 3] * 40)]
    async with reader, aiomqtt.Client(mosquitto.host, mosquitto.port) as writer:
        await writer.publish("pa/v1/relied/kept", b"kept", qos=1, retain=True)
        await reader.subscribe("pa/v1/relied/#", qos=2)
        await wait_until(lambda: len(got) == 1, "the retained message")
        assert isinstance(reader._client.socket(), BufferedSocket)
        sock = raw_socket(reader)
        assert sock is not None and sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        before = time.monotonic()
        writer.pending_calls_threshold = len(sent)  # all at once, so the reader gets them in runs
        await asyncio.gather(
            *(writer.publish(f"pa/v1/relied/{n}", payload, qos=1) for n, payload in enumerate(sent))
        )
        await writer.publish("pa/v1/relied/qos0", b"zero", qos=0)
        await writer.publish("pa/v1/relied/qos2", b"two", qos=2)  # paho's own handling, same sink
        await wait_until(lambda: len(got) == len(sent) + 3, "every message handed to the sink")
        sock.shutdown(socket.SHUT_RDWR)  # a power cut: no DISCONNECT
        await wait_until(lambda: raw_socket(reader) is None, "paho to notice the loss")
        assert len(reader.messages) == 0
        with pytest.raises(aiomqtt.MqttError):
            async for message in reader.messages:  # aiomqtt's queue is bypassed: only the loss
                pytest.fail(f"aiomqtt queued {message.topic}")
    assert [(topic, payload, retain) for topic, payload, retain, _ in got] == [
        ("pa/v1/relied/kept", b"kept", True),
        *((f"pa/v1/relied/{n}", payload, False) for n, payload in enumerate(sent)),
        ("pa/v1/relied/qos0", b"zero", False),
        ("pa/v1/relied/qos2", b"two", False),
    ]
    stamps = [read_at for *_, read_at in got]
    assert before <= stamps[1] and stamps == sorted(stamps) and stamps[-1] <= time.monotonic()
    assert asyncio.get_running_loop().time() <= time.monotonic()  # paho's clock is the event loop's


def test_a_buffered_socket_reads_the_kernel_once_a_turn() -> None:
    near, far = socket.socketpair()
    with near, far:
        near.setblocking(False)
        buffered = BufferedSocket(near)
        far.sendall(b"abcdef")
        assert buffered.recv(2) == b"ab"  # one read from the kernel, kept
        assert buffered.pending() == 4
        assert buffered.recv(10) == b"cdef"  # what is left, as a socket gives part of a request
        far.sendall(b"ghi")
        with pytest.raises(BlockingIOError):  # this turn has had its read: the rest waits for the next
            buffered.recv(1)
        assert buffered.pending() == 0  # the turn ends (the kernel holds bytes: the loop comes back)
        assert buffered.recv(1) == b"g"
        assert buffered.recv(2) == b"hi"
        assert buffered.pending() == 0
        with pytest.raises(BlockingIOError):  # nothing in the kernel: as the socket itself says
            buffered.recv(1)
        assert buffered.pending() == 0
        far.shutdown(socket.SHUT_WR)
        assert buffered.recv(1) == b""  # end of stream, as paho expects it
        assert buffered.fileno() == near.fileno()


async def test_aiomqtt_keeps_no_timer_of_its_own_with_an_infinite_timeout(
    mosquitto: MosquittoProcess,
) -> None:
    pid = mosquitto.pid
    assert pid is not None
    async with aiomqtt.Client(mosquitto.host, mosquitto.port, timeout=0.05) as client:
        os.kill(pid, signal.SIGSTOP)  # no ack comes
        try:
            with pytest.raises(TimeoutError):  # ours, not aiomqtt's MqttError("Operation timed out")
                async with asyncio.timeout(0.5):
                    await client.publish("pa/v1/slow", b"x", qos=1, timeout=math.inf)
        finally:
            os.kill(pid, signal.SIGCONT)


def test_broker_urls_are_validated_where_they_enter() -> None:
    assert BrokerAddress.parse("mqtt://u:p%40ss@10.0.0.5:1884") == BrokerAddress(
        "10.0.0.5", 1884, "u", "p@ss"
    )
    assert BrokerAddress.parse("127.0.0.1").port == 1883
    for bad in ("http://host", "mqtt://host:99999", "mqtt://"):
        with pytest.raises(ConfigError):
            BrokerAddress.parse(bad)
