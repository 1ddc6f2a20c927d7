"""Both brokers we run, driven by aiomqtt with TCP_NODELAY: the MQTT features speakerctl relies on.

Each behaviour test runs against a private Mosquitto and against the embedded broker; Mosquitto's
authentication and ACLs are tested on their own. Test names state the behaviour observed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import aiomqtt
import pytest

from speakerctl.broker import mosquitto as mosquitto_module
from speakerctl.broker.embedded import EmbeddedBroker
from speakerctl.broker.mosquitto import MosquittoConfig, MosquittoProcess, hash_password
from speakerctl.broker.ports import accepts_connections, free_port
from speakerctl.errors import BrokerError
from speakerctl.protocol.limits import MAX_CHUNK_PAYLOAD

AuthBrokerFactory = Callable[[Mapping[str, str], Sequence[str]], MosquittoProcess]
NODELAY = (socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
FLEET = 279
WAIT = 5.0
SESSION_SWEEP = 1.2

DOOMED_CLIENT = """
import sys
import paho.mqtt.client as mqtt
host, port, topic = sys.argv[1], int(sys.argv[2]), sys.argv[3]
client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="doomed-" + topic[-8:])
client.will_set(topic, b"offline", qos=1, retain=True)
client.on_connect = lambda *args: print("ready", flush=True)
client.connect(host, port, keepalive=60)
client.loop_forever()
"""


class Broker(Protocol):
    """What the tests need of a broker."""

    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...


@pytest.fixture(params=[pytest.param("mosquitto", marks=pytest.mark.mosquitto), "embedded_broker"])
def broker(request: pytest.FixtureRequest) -> Broker:
    """Each behaviour test runs against both brokers."""
    found: Broker = request.getfixturevalue(request.param)
    return found


def client(broker: Broker, **kwargs: Any) -> aiomqtt.Client:
    """An aiomqtt client of `broker` with TCP_NODELAY set."""
    return aiomqtt.Client(broker.host, broker.port, socket_options=[NODELAY], **kwargs)


def fresh_topic(name: str) -> str:
    """A topic no other test uses (the embedded broker lives for the whole session)."""
    return f"test/{uuid.uuid4().hex[:12]}/{name}"


async def collect(sub: aiomqtt.Client, count: int, seconds: float = WAIT) -> list[aiomqtt.Message]:
    """The first `count` messages of `sub`, or fewer if `seconds` pass first."""
    got: list[aiomqtt.Message] = []
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            async for message in sub.messages:
                got.append(message)
                if len(got) == count:
                    break
    return got


@contextlib.asynccontextmanager
async def doomed_client(broker: Broker, will_topic: str) -> AsyncIterator[asyncio.subprocess.Process]:
    """A client with a retained Will, in a process the test kills; reaped on exit."""
    argv = ["-c", DOOMED_CLIENT, broker.host, str(broker.port), will_topic]
    process = await asyncio.create_subprocess_exec(sys.executable, *argv, stdout=subprocess.PIPE)
    try:
        assert process.stdout is not None
        assert await asyncio.wait_for(process.stdout.readline(), WAIT) == b"ready\n"
        yield process
    finally:
        if process.returncode is None:
            process.kill()
        await process.communicate()


# ---------------------------------------------------------------- both brokers
async def test_published_message_reaches_subscriber(broker: Broker) -> None:
    topic = fresh_topic("cmd")
    async with client(broker) as sub, client(broker) as pub:
        await sub.subscribe(topic, qos=1)
        await pub.publish(topic, b"hello", qos=1)
        [message] = await collect(sub, 1)
    assert message.payload == b"hello"


async def test_retained_status_reaches_late_subscriber(broker: Broker) -> None:
    topic = fresh_topic("status")
    async with client(broker) as pub:
        await pub.publish(topic, b'{"state":"idle"}', qos=1, retain=True)
    async with client(broker) as late:
        await late.subscribe(topic, qos=1)
        [message] = await collect(late, 1)
    assert (message.payload, message.retain) == (b'{"state":"idle"}', True)


async def test_retained_statuses_of_whole_fleet_reach_late_wildcard_subscriber(
    broker: Broker,
) -> None:
    """A restarted controller sees every device: the check iotcore (rumqttd) fails at 100."""
    root = fresh_topic("dev")
    async with client(broker) as pub:
        for i in range(FLEET):
            await pub.publish(f"{root}/d{i}/status", b"{}", qos=1, retain=True)
    async with client(broker) as late:
        await late.subscribe(f"{root}/+/status", qos=1)
        got = await collect(late, FLEET)
    assert len({str(m.topic) for m in got}) == FLEET


async def test_will_is_published_when_client_process_is_killed(broker: Broker) -> None:
    topic = fresh_topic("status")
    async with client(broker) as watcher, doomed_client(broker, topic) as doomed:
        await watcher.subscribe(topic, qos=1)
        doomed.kill()
        [will] = await collect(watcher, 1)
    assert will.payload == b"offline"


async def test_largest_chunk_frame_passes(broker: Broker) -> None:
    topic = fresh_topic("content")
    frame = os.urandom(MAX_CHUNK_PAYLOAD)
    async with client(broker) as sub, client(broker) as pub:
        await sub.subscribe(topic, qos=1)
        await pub.publish(topic, frame, qos=1)
        [message] = await collect(sub, 1)
    assert message.payload == frame


async def test_retained_message_goes_only_to_matching_subscribers(broker: Broker) -> None:
    """amqtt 0.12 sent it to every new client once anyone had subscribed to its topic."""
    status, other = fresh_topic("status"), fresh_topic("cmd")
    async with client(broker) as pub, client(broker) as first:
        await first.subscribe(status, qos=1)
        await pub.publish(status, b"idle", qos=1, retain=True)
        assert len(await collect(first, 1)) == 1
        async with client(broker) as newcomer:
            await newcomer.subscribe(other, qos=1)
            await pub.publish(other, b"marker", qos=1)
            # A stray retained message would come at subscribe time, so before the marker.
            [first_message] = await collect(newcomer, 1)
            assert first_message.payload == b"marker"


async def test_persistent_session_reconnects_while_others_subscribe(broker: Broker) -> None:
    """amqtt 0.12 dropped such a connection: "dictionary changed size during iteration"."""
    topic, name = fresh_topic("status"), f"cluster-{uuid.uuid4().hex[:8]}"
    async with client(broker) as pub:
        await pub.publish(topic, b"idle", qos=1, retain=True)
        async with client(broker, identifier=name, clean_session=False) as device:
            await device.subscribe(topic, qos=1)
        async with contextlib.AsyncExitStack() as stack:
            others = [await stack.enter_async_context(client(broker)) for _ in range(30)]
            for attempt in range(3):
                # Let the broker finish the previous DISCONNECT first: amqtt 0.12 loses a QoS 1
                # message in flight when a session is taken over mid-disconnect (a known gap of
                # the embedded broker, see docs/architecture.md; Mosquitto does not need this).
                await asyncio.sleep(0.5)
                async with client(broker, identifier=name, clean_session=False) as device:
                    subscribes = (other.subscribe(fresh_topic("x"), qos=1) for other in others)
                    await asyncio.gather(*subscribes, pub.publish(topic, b"%d" % attempt, qos=1))
                    await wait_for_payload(device, b"%d" % attempt)


async def wait_for_payload(sub: aiomqtt.Client, payload: bytes) -> None:
    """Return once `sub` receives `payload`; fail the test after WAIT seconds."""
    async with asyncio.timeout(WAIT):
        async for message in sub.messages:
            if message.payload == payload:
                return


async def test_persistent_session_receives_qos1_message_sent_while_away(broker: Broker) -> None:
    """Away longer than amqtt's 1 s session sweep, which dropped anonymous sessions."""
    topic, name = fresh_topic("cmd"), f"cluster-{uuid.uuid4().hex[:8]}"
    async with client(broker, identifier=name, clean_session=False) as device:
        await device.subscribe(topic, qos=1)
    await asyncio.sleep(SESSION_SWEEP)
    async with client(broker) as pub:
        await pub.publish(topic, b"play", qos=1)
    async with client(broker, identifier=name, clean_session=False) as device:
        [message] = await collect(device, 1)
    assert message.payload == b"play"


# ---------------------------------------------------------------- Mosquitto authentication and ACLs
USERS = {"controller": "c0ntr0l", "cluster-1": "s3cret"}
ACL = [
    "user controller",
    "topic readwrite pa/v1/#",
    "user cluster-1",
    "topic write pa/v1/dev/cluster-1/#",
    "topic read pa/v1/dev/cluster-1/cmd",
]


async def test_mosquitto_refuses_wrong_password(mosquitto_auth: AuthBrokerFactory) -> None:
    broker = mosquitto_auth(USERS, ACL)
    with pytest.raises(aiomqtt.MqttError):
        async with client(broker, username="cluster-1", password="wrong"):
            pass


async def test_mosquitto_refuses_anonymous_client(mosquitto_auth: AuthBrokerFactory) -> None:
    broker = mosquitto_auth(USERS, ACL)
    with pytest.raises(aiomqtt.MqttError):
        async with client(broker):
            pass


async def test_mosquitto_acl_drops_forbidden_publish_silently_but_acks_it(
    mosquitto_auth: AuthBrokerFactory,
) -> None:
    """MQTT 3.1.1 has no negative PUBACK: Mosquitto acks the publish and delivers it to nobody."""
    broker = mosquitto_auth(USERS, ACL)
    controller = client(broker, username="controller", password=USERS["controller"])
    device = client(broker, username="cluster-1", password=USERS["cluster-1"])
    async with controller, device:
        await controller.subscribe("pa/v1/#", qos=1)
        await device.publish("pa/v1/dev/other/status", b"spoofed", qos=1)  # acked, not refused
        await device.publish("pa/v1/dev/cluster-1/status", b"genuine", qos=1)
        got = await collect(controller, 2, seconds=1.0)
    assert [m.payload for m in got] == [b"genuine"]


async def test_mosquitto_accepts_password_hashed_in_python(
    mosquitto_auth: AuthBrokerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mosquitto_module, "find_mosquitto_passwd", lambda: None)
    broker = mosquitto_auth(USERS, ACL)
    assert "$7$101$" in (broker.directory / "passwd").read_text()
    async with client(broker, username="cluster-1", password=USERS["cluster-1"]):
        pass


def test_password_hash_has_mosquitto_format() -> None:
    assert hash_password("s3cret", salt=b"\0" * 12).startswith("$7$101$AAAAAAAAAAAAAAAA$")


# ---------------------------------------------------------------- start-up and shutdown
def test_mosquitto_startup_failure_raises_broker_error_with_log_tail(
    tmp_path: Path, mosquitto_binary: str
) -> None:
    config = MosquittoConfig(port=free_port(), extra=["no_such_option true"])
    broker = MosquittoProcess(config, tmp_path, binary=mosquitto_binary)
    with pytest.raises(BrokerError, match="no_such_option"):
        broker.start()
    assert not broker.is_running


def test_mosquitto_stop_releases_port(mosquitto: MosquittoProcess) -> None:
    mosquitto.stop()
    assert not accepts_connections(mosquitto.host, mosquitto.port)


def test_embedded_broker_refuses_port_in_use(embedded_broker: EmbeddedBroker) -> None:
    with pytest.raises(BrokerError, match="in use"):
        EmbeddedBroker(port=embedded_broker.port).start()


def test_embedded_broker_stop_ends_its_process() -> None:
    broker = EmbeddedBroker().start()
    pid = broker.pid
    assert pid is not None and broker.url == f"mqtt://127.0.0.1:{broker.port}"
    broker.stop()
    assert not broker.is_running and not accepts_connections(broker.host, broker.port)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # reaped, not a zombie
