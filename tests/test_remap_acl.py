"""Broker ACLs across a remap: a moved cluster may read its new zone topics in a real Mosquitto."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from conftest import AuthBrokerFactory
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from test_agent_subscriptions import Inbox
from waiting import connected

from devices.agent import AgentConfig, DeviceAgent
from devices.hardware import Hardware
from simulator.hardware import SimAmplifier, SimClock, SimOutput, SimTelemetry
from speakerctl.app import zones as zones_app
from speakerctl.app.access import local_administrator
from speakerctl.app.context import AppContext, open_store
from speakerctl.app.keys import cluster_zones
from speakerctl.broker.address import BrokerAddress
from speakerctl.broker.link import Link
from speakerctl.clock import SystemClock
from speakerctl.config import Settings
from speakerctl.protocol import (
    Ack,
    Command,
    Configure,
    ContentRef,
    DeliveryEvent,
    Play,
    Priority,
    codec,
    topics,
)
from speakerctl.protocol.signing import Signer, TrustedKeys
from speakerctl.security.credentials import mosquitto_acl

DEVICE = "st-ke-sach-an-my-01"
OLD_CHAIN = ["soc-trang", "st-ke-sach", "st-ke-sach-an-my"]
NEW_CHAIN = ("can-tho", "ct-nhon-my")  # An Mỹ went into xã Nhơn Mỹ (NQ 1668, item 73)
MAPPING = "soc_trang_to_can_tho_2025"


def _command(signer: Signer, body: Configure | Play, topic: str, msg_id: str) -> bytes:
    now = time.time_ns() // 1_000_000
    return codec.encode(signer.sign_for(Command(msg_id, now, now + 60_000, Priority.NORMAL, body), topic))


async def test_the_acl_for_a_remap_lets_a_moved_cluster_hear_its_new_commune(
    tmp_path: Path, mosquitto_auth: AuthBrokerFactory
) -> None:
    ctx = AppContext(Settings(data_dir=tmp_path / "ctl"), SystemClock())
    open_store(ctx.settings)
    transition = cluster_zones(ctx, {DEVICE}, MAPPING)
    assert transition == {DEVICE: [*OLD_CHAIN, *NEW_CHAIN]}  # old and new zones while the remap happens
    broker = mosquitto_auth({"ctl": "ctl-secret", DEVICE: "dev-secret"}, mosquitto_acl("ctl", transition))
    signer = Signer(Ed25519PrivateKey.generate())
    hardware = Hardware(SimOutput(time_scale=20), SimAmplifier(), SimTelemetry(), SimClock())
    trusted = TrustedKeys.of([signer.private.public_key()])
    config = AgentConfig(DEVICE, tuple(OLD_CHAIN), tmp_path / DEVICE, trusted_keys=trusted)
    agent = DeviceAgent(config, BrokerAddress(broker.host, broker.port, DEVICE, "dev-secret"), hardware)
    inbox = Inbox()
    ctl = Link(BrokerAddress(broker.host, broker.port, "ctl", "ctl-secret"), inbox, client_id="ctl")
    await ctl.subscribe([topics.device_events(DEVICE)])
    own, commune = topics.device_cmd(DEVICE), topics.zone_cmd(NEW_CHAIN[-1])
    content = ContentRef("ab" * 32, 100, "opus", 200)
    async with connected(agent, ctl):
        await ctl.publish(own, _command(signer, Configure(NEW_CHAIN), own, "cfg-1"))
        await inbox.seen.wait_for(lambda _: bool(_events(inbox, Ack)), "the configure ack")
        await ctl.publish(commune, _command(signer, Play("bc-new", (content,)), commune, "play-1"))
        await inbox.seen.wait_for(
            lambda _: bool(_events(inbox, DeliveryEvent)), "the play on the new commune"
        )
    [ack] = _events(inbox, Ack)
    assert ack.ok and ack.detail == "can-tho > ct-nhon-my"
    assert _events(inbox, DeliveryEvent)[0].broadcast_id == "bc-new"

    store = ctx.store()
    store.remaps.apply(
        zones_app.change(zones_app.plan(store, MAPPING, local_administrator()), local_administrator(), ctx)
    )
    assert cluster_zones(ctx, {DEVICE}, None) == {DEVICE: list(NEW_CHAIN)}  # after it: the new zones only


def _events(inbox: Inbox, kind: type[Ack] | type[DeliveryEvent]) -> list[Any]:
    decoded = [codec.decode_event(m.payload) for m in inbox.seen.items if m.topic.endswith("/evt")]
    return [e for e in decoded if isinstance(e, kind)]
