"""The agent's content subscriptions on a real Mosquitto: a refused one, stale ones a session kept."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from waiting import Observed, connected, wait_until

from devices.agent import REFUSED_DETAIL, AgentConfig, DeviceAgent
from devices.hardware import Hardware
from simulator.hardware import SimAmplifier, SimClock, SimOutput, SimTelemetry
from speakerctl.broker.address import BrokerAddress
from speakerctl.broker.link import Incoming, Link
from speakerctl.broker.mosquitto import MosquittoConfig, MosquittoProcess
from speakerctl.broker.ports import free_port
from speakerctl.protocol import (
    Command,
    ContentRef,
    DeliveryEvent,
    DeliveryState,
    Play,
    Priority,
    Reason,
    chunks,
    codec,
    topics,
)
from speakerctl.protocol.signing import Signer, TrustedKeys

DEVICE = "sub-test-01"
ZONE = "sub-test-zone"


def _agent(address: BrokerAddress, root: Path, signer: Signer, patience: float = 2.0) -> DeviceAgent:
    hardware = Hardware(SimOutput(time_scale=20), SimAmplifier(), SimTelemetry(), SimClock())
    trusted = TrustedKeys.of([signer.private.public_key()])
    config = AgentConfig(
        DEVICE, (ZONE,), root / DEVICE, trusted_keys=trusted, repair_after_s=0.5, refused_patience_s=patience
    )
    return DeviceAgent(config, address, hardware)


class Inbox:
    def __init__(self) -> None:
        self.seen: Observed[Incoming] = Observed()

    async def __call__(self, message: Incoming) -> None:
        self.seen.add(message)

    def deliveries(self) -> list[DeliveryEvent]:
        events = [codec.decode_event(m.payload) for m in self.seen.items if m.topic.endswith("/evt")]
        return [e for e in events if isinstance(e, DeliveryEvent)]


def _play(signer: Signer, data: bytes, broadcast_id: str) -> Command:
    ref = ContentRef(hashlib.sha256(data).hexdigest(), len(data), "opus", 200)
    now = time.time_ns() // 1_000_000
    command = Command(f"id-{broadcast_id}", now, now + 60_000, Priority.NORMAL, Play(broadcast_id, (ref,)))
    return signer.sign_for(command, topics.device_cmd(DEVICE))


DYNSEC_PLUGIN = Path("/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so")


def _dynsec_client(username: str, password: str, role: str) -> dict[str, object]:
    """A dynamic-security client entry: PBKDF2-SHA512 of the password, as the plugin stores it."""
    salt, iterations = os.urandom(12), 101
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, 64)
    b64 = base64.b64encode
    return {
        "username": username,
        "password": b64(digest).decode(),
        "salt": b64(salt).decode(),
        "iterations": iterations,
        "roles": [{"rolename": role}],
    }


def _allow(acltype: str, topic: str) -> dict[str, object]:
    return {"acltype": acltype, "topic": topic, "priority": 0, "allow": True}


DYNSEC_TOPIC = "$CONTROL/dynamic-security/v1"
_CTL_ACLS = (
    _allow("publishClientSend", "#"),
    _allow("subscribePattern", "#"),
    _allow("publishClientSend", DYNSEC_TOPIC),  # `#` does not match a `$` topic: the admin's own grant
)


@pytest.fixture
def refusing_broker(tmp_path: Path, mosquitto_binary: str) -> Iterator[MosquittoProcess]:
    """A Mosquitto whose ACL refuses the cluster's content subscriptions in the SUBACK.

    Mosquitto's acl_file grants every subscription and filters at delivery; its dynamic-security plugin
    checks subscriptions, so this broker uses it: the cluster may read its command topics, nothing else.
    """
    if not DYNSEC_PLUGIN.exists():
        pytest.skip(f"no {DYNSEC_PLUGIN}")
    device_acls = [
        _allow("subscribeLiteral", topics.device_cmd(DEVICE)),
        _allow("subscribeLiteral", topics.zone_cmd(ZONE)),
        _allow("publishClientSend", topics.device_status(DEVICE)),
        _allow("publishClientSend", topics.device_events(DEVICE)),
    ]
    state = {
        "defaultACLAccess": {
            "publishClientSend": False,
            "publishClientReceive": True,
            "subscribe": False,
            "unsubscribe": True,
        },
        "clients": [_dynsec_client("ctl", "ctl-secret", "ctl"), _dynsec_client(DEVICE, "dev-secret", "dev")],
        "groups": [],
        "roles": [
            {"rolename": "ctl", "acls": [*_CTL_ACLS]},
            {"rolename": "dev", "acls": device_acls},
        ],
    }
    dynsec = tmp_path / "dynsec.json"
    dynsec.write_text(json.dumps(state))
    extra = (f"plugin {DYNSEC_PLUGIN}", f"plugin_opt_config_file {dynsec}")
    config = MosquittoConfig(port=free_port(), allow_anonymous=False, extra=extra)
    with MosquittoProcess(config, tmp_path / "mosquitto", binary=mosquitto_binary) as broker:
        yield broker


async def test_a_refused_content_subscription_fails_the_broadcast_at_once_without_accepted(
    refusing_broker: MosquittoProcess, tmp_path: Path
) -> None:
    broker = refusing_broker
    signer = Signer(Ed25519PrivateKey.generate())
    agent = _agent(BrokerAddress(broker.host, broker.port, DEVICE, "dev-secret"), tmp_path, signer)
    inbox = Inbox()
    ctl = Link(BrokerAddress(broker.host, broker.port, "ctl", "ctl-secret"), inbox, client_id="ctl")
    await ctl.subscribe([topics.device_events(DEVICE)])
    play = codec.encode(_play(signer, b"refused" * 100, "bc-refused"))
    async with connected(agent, ctl):
        await ctl.publish(topics.device_cmd(DEVICE), play)
        # Well within the content timeout (300 s): the cluster must not wait for content that cannot come.
        await inbox.seen.wait_for(lambda _: bool(inbox.deliveries()), "a delivery event", timeout=15)
    events = inbox.deliveries()
    assert [(e.state, e.reason, e.detail) for e in events] == [
        (DeliveryState.FAILED, Reason.CONTENT_TIMEOUT, REFUSED_DETAIL)
    ]
    assert not agent._fetches


async def test_a_content_subscription_left_in_the_session_is_dropped_on_its_first_chunk(
    mosquitto: MosquittoProcess, tmp_path: Path
) -> None:
    address = BrokerAddress(mosquitto.host, mosquitto.port)
    data = b"stale content " * 50
    sha = hashlib.sha256(data).hexdigest()
    # Before the reboot the cluster was downloading `sha`: its persistent session holds the subscription.
    before = Link(address, Inbox(), client_id=DEVICE, persistent=True)
    await before.subscribe([topics.content(sha)])
    async with connected(before):
        pass
    agent = _agent(address, tmp_path, Signer(Ed25519PrivateKey.generate()))
    received: Observed[str] = Observed()
    agent.link.wrap_handler(lambda inner: _counting(inner, received))
    left: Observed[str] = Observed()
    agent.link.unsubscribe = _recording(agent.link.unsubscribe, left)  # type: ignore[method-assign]
    ctl = Link(address, Inbox(), client_id="ctl")
    frame = chunks.pack(0, 1, data)
    async with connected(agent, ctl):
        await ctl.publish(topics.content(sha), frame)
        await received.wait_for(lambda items: topics.content(sha) in items, "the stale chunk")
        await left.wait_for(lambda items: topics.content(sha) in items, "the unsubscribe")
        # After leaving, a chunk of that item no longer reaches the cluster; a command sent after it does.
        await ctl.publish(topics.content(sha), frame)
        await ctl.publish(topics.device_cmd(DEVICE), b"{}")
        await received.wait_for(lambda items: topics.device_cmd(DEVICE) in items, "the later command")
    assert received.items.count(topics.content(sha)) == 1


def _counting(
    inner: Callable[[Incoming], Awaitable[None]], seen: Observed[str]
) -> Callable[[Incoming], Awaitable[None]]:
    async def handle(message: Incoming) -> None:
        seen.add(message.topic)
        await inner(message)

    return handle


def _recording(
    inner: Callable[[Iterable[str]], Awaitable[None]], left: Observed[str]
) -> Callable[[Iterable[str]], Awaitable[None]]:
    async def unsubscribe(topic_list: Iterable[str]) -> None:
        wanted = list(topic_list)
        await inner(wanted)
        for topic in wanted:
            left.add(topic)

    return unsubscribe


async def test_a_refused_content_subscription_is_retried_and_accepted_once_the_acl_allows_it(
    refusing_broker: MosquittoProcess, tmp_path: Path
) -> None:
    """The link keeps trying a refused subscription with its backoff: granted later, the download goes on.

    The broker is changed live (dynamic security's control topic), as a clustered broker ends a
    leader election: no reconnect, no new command.
    """
    broker = refusing_broker
    signer = Signer(Ed25519PrivateKey.generate())
    address = BrokerAddress(broker.host, broker.port, DEVICE, "dev-secret")
    agent = _agent(address, tmp_path, signer, patience=60)
    inbox = Inbox()
    ctl = Link(BrokerAddress(broker.host, broker.port, "ctl", "ctl-secret"), inbox, client_id="ctl")
    await ctl.subscribe([topics.device_events(DEVICE)])
    data = b"retried" * 100
    command = _play(signer, data, "bc-retried")
    sha = hashlib.sha256(data).hexdigest()
    async with connected(agent, ctl):
        await ctl.publish(topics.device_cmd(DEVICE), codec.encode(command))
        await wait_until(lambda: topics.content(sha) in agent.link._ungranted, "the first refusal")
        assert not inbox.deliveries()  # no `accepted` (nor `failed`) while refused
        grant = _allow("subscribeLiteral", topics.content(sha)) | {"command": "addRoleACL", "rolename": "dev"}
        await ctl.publish(DYNSEC_TOPIC, json.dumps({"commands": [grant]}).encode())
        await inbox.seen.wait_for(lambda _: bool(inbox.deliveries()), "accepted", timeout=60)
        assert inbox.deliveries()[0].state is DeliveryState.ACCEPTED
        ref = ContentRef(sha, len(data), "opus", 200)
        for frame in chunks.frames(data, range(ref.chunks)):
            await ctl.publish(topics.content(sha), frame)
        ready = DeliveryState.CONTENT_READY
        await inbox.seen.wait_for(lambda _: ready in {e.state for e in inbox.deliveries()}, "content ready")
    assert not agent.link._ungranted


async def test_a_subscription_refused_when_renewed_on_connect_is_retried_until_granted(
    refusing_broker: MosquittoProcess, tmp_path: Path
) -> None:
    """A topic the link subscribes to on (re)connecting has no caller to hear a refusal: retried.

    Before, such a refusal went unnoticed and the topic was silently never delivered.
    """
    broker = refusing_broker
    wanted = topics.content("ab" * 32)
    heard = Inbox()
    device = Link(BrokerAddress(broker.host, broker.port, DEVICE, "dev-secret"), heard, client_id=DEVICE)
    await device.subscribe([wanted])  # not connected yet: subscribed on connecting
    ctl = Link(BrokerAddress(broker.host, broker.port, "ctl", "ctl-secret"), Inbox(), client_id="ctl")
    async with connected(device, ctl):
        await wait_until(lambda: wanted in device._ungranted, "the refusal on connecting")
        grant = _allow("subscribeLiteral", wanted) | {"command": "addRoleACL", "rolename": "dev"}
        await ctl.publish(DYNSEC_TOPIC, json.dumps({"commands": [grant]}).encode())
        await wait_until(lambda: not device._ungranted, "the retried subscription granted", timeout=60)
        await ctl.publish(wanted, b"chunk")
        await heard.seen.wait_for(
            lambda ms: any(m.topic == wanted for m in ms), "the message on the granted topic"
        )
