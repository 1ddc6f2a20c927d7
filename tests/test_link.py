"""The MQTT link at its edges: no broker, wrong credentials, a broker that goes away and comes back."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest
from waiting import wait_until

from speakerctl.app.context import open_store
from speakerctl.broker.address import BrokerAddress
from speakerctl.broker.link import Backoff, Incoming, Link
from speakerctl.broker.mosquitto import MosquittoProcess
from speakerctl.broker.ports import free_port
from speakerctl.config import Settings
from speakerctl.controller.service import Controller
from speakerctl.errors import AuthError, ConfigError, LinkError

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


def _awaiting_ack(link: Link) -> bool:
    client = link._client
    return client is not None and any(True for _ in client._pending_calls)


def test_broker_urls_are_validated_where_they_enter() -> None:
    assert BrokerAddress.parse("mqtt://u:p%40ss@10.0.0.5:1884") == BrokerAddress(
        "10.0.0.5", 1884, "u", "p@ss"
    )
    assert BrokerAddress.parse("127.0.0.1").port == 1883
    for bad in ("http://host", "mqtt://host:99999", "mqtt://"):
        with pytest.raises(ConfigError):
            BrokerAddress.parse(bad)
