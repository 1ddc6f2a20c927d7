"""Signed commands: what a cluster acts on, what it refuses and reports, key rotation, replay."""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st
from waiting import Observed, connected, wait_until

from devices.agent import AgentConfig, DeviceAgent
from devices.cache import ContentCache
from devices.hardware import Hardware
from devices.trust import read_trusted_keys
from simulator.hardware import SimAmplifier, SimClock, SimOutput, SimTelemetry
from speakerctl.broker.address import BrokerAddress
from speakerctl.broker.embedded import EmbeddedBroker
from speakerctl.broker.link import Incoming, Link
from speakerctl.broker.mosquitto import MosquittoProcess
from speakerctl.errors import ConfigError, ProtocolError, SignatureError
from speakerctl.protocol import (
    Command,
    ContentRef,
    DeliveryEvent,
    DeliveryState,
    Ping,
    Play,
    Priority,
    Status,
    chunks,
    codec,
    signing,
    topics,
)
from speakerctl.protocol.limits import MAX_TEXT_LENGTH, MAX_TIMESTAMP_MS
from speakerctl.protocol.management import Ack
from speakerctl.protocol.signing import Signer, TrustedKeys
from speakerctl.security import keys


def _now() -> int:
    return time.time_ns() // 1_000_000


def _ping(ttl_ms: int = 10_000) -> Command:
    now = _now()
    return Command(secrets.token_hex(8), now, now + ttl_ms, Priority.NORMAL, Ping())


def _signer() -> Signer:
    return Signer(Ed25519PrivateKey.generate())


# -- the signature itself ----------------------------------------------------------------


def test_a_signed_command_verifies_after_the_wire_and_any_change_breaks_it() -> None:
    signer = _signer()
    trusted = TrustedKeys.of([signer.private.public_key()])
    signed = signer.sign(_ping())
    assert signed.signature and signed.signature.startswith(f"{signer.key_id}.")
    trusted.verify(codec.decode_command(codec.encode(signed)))
    tampered = dataclasses.replace(signed, priority=Priority.EMERGENCY)
    with pytest.raises(SignatureError, match="bad signature"):
        trusted.verify(tampered)
    with pytest.raises(SignatureError, match="not signed"):
        trusted.verify(dataclasses.replace(signed, signature=None))
    with pytest.raises(SignatureError, match="unknown key"):
        TrustedKeys.of([_signer().private.public_key()]).verify(signed)
    with pytest.raises(SignatureError):
        trusted.verify(dataclasses.replace(signed, signature=f"{signer.key_id}.AAAA"))
    with pytest.raises(SignatureError, match="not signed"):
        TrustedKeys().verify(dataclasses.replace(signed, signature=""))


def test_a_signature_checked_once_in_a_process_still_binds_its_bytes_and_its_key() -> None:
    # A process remembers valid signatures (thousands of simulated clusters get one zone command).
    signer = _signer()
    signed = signer.sign(_ping())
    TrustedKeys.of([signer.private.public_key()]).verify(signed)
    another_cluster = TrustedKeys.of([signer.private.public_key()])
    another_cluster.verify(codec.decode_command(codec.encode(signed)))  # remembered: the same bytes
    with pytest.raises(SignatureError, match="bad signature"):  # the same signature on other bytes
        another_cluster.verify(dataclasses.replace(signed, priority=Priority.EMERGENCY))
    with pytest.raises(SignatureError, match="unknown key"):  # a cluster that does not trust the key
        TrustedKeys.of([_signer().private.public_key()]).verify(signed)
    for _ in range(signing.VERIFIED_KEPT + 1):
        another_cluster.verify(signer.sign(_ping()))
    assert len(signing._verified) == signing.VERIFIED_KEPT  # bounded, the oldest forgotten


def test_public_key_files_are_parsed_strictly() -> None:
    signer = _signer()
    text = f"# the controller\n{signer.public_line()}\n"
    assert set(TrustedKeys.parse(text).keys) == {signer.key_id}
    kid_of_other = _signer().key_id
    with pytest.raises(ProtocolError, match="does not match"):
        TrustedKeys.parse(signer.public_line().replace(signer.key_id, kid_of_other))
    with pytest.raises(ProtocolError, match="line 1"):
        TrustedKeys.parse("rsa abc def")


def test_key_rotation_keeps_old_signatures_valid_until_the_old_key_is_retired(tmp_path: Path) -> None:
    keys_dir = tmp_path / "keys"
    old = keys.load_or_create_signer(keys_dir)
    assert keys.load_or_create_signer(keys_dir).key_id == old.key_id  # loaded, not made again
    assert (keys_dir / f"command-{old.key_id}.key").stat().st_mode & 0o077 == 0
    new = keys.rotate(keys_dir)
    assert keys.load_or_create_signer(keys_dir).key_id == new.key_id
    during = read_trusted_keys(keys.trusted_path(keys_dir))
    during.verify(old.sign(_ping()))  # clusters provisioned with both accept both
    during.verify(new.sign(_ping()))
    with pytest.raises(ConfigError, match="active"):
        keys.retire(keys_dir, new.key_id)
    keys.retire(keys_dir, old.key_id)
    after = read_trusted_keys(keys.trusted_path(keys_dir))
    after.verify(new.sign(_ping()))
    with pytest.raises(SignatureError, match="unknown key"):
        after.verify(old.sign(_ping()))
    assert keys.trusted_ids(keys_dir) == [new.key_id]


# -- the agent ---------------------------------------------------------------------------


class Inbox:
    """Collects messages; tests wait on what it received."""

    def __init__(self) -> None:
        self.seen: Observed[Incoming] = Observed()

    @property
    def messages(self) -> list[Incoming]:
        return self.seen.items

    async def __call__(self, message: Incoming) -> None:
        self.seen.add(message)

    async def wait_for(self, check: Callable[[Inbox], bool], what: str) -> None:
        """Return once `check(self)` holds."""
        await self.seen.wait_for(lambda _: check(self), what)

    def statuses(self) -> list[Status]:
        return [codec.decode_status(m.payload) for m in self.messages if m.topic.endswith("/status")]

    def events(self) -> list[object]:
        return [codec.decode_event(m.payload) for m in self.messages if m.topic.endswith("/evt")]

    def acked(self, command_id: str) -> bool:
        return any(isinstance(e, Ack) and e.command_id == command_id for e in self.events())

    def finished(self, broadcast_id: str) -> int:
        # By event id: a cluster repeats its latest event, as it was, to a copy of the play.
        done = (DeliveryState.FINISHED, broadcast_id)
        events = self.events()
        return len(
            {e.msg_id for e in events if isinstance(e, DeliveryEvent) and (e.state, e.broadcast_id) == done}
        )


def _agent(url: str, root: Path, device: str, trusted: TrustedKeys) -> tuple[DeviceAgent, SimOutput]:
    output = SimOutput(time_scale=20)
    hardware = Hardware(output, SimAmplifier(), SimTelemetry(), SimClock())
    config = AgentConfig(device, (f"{device}-zone",), root / device, trusted_keys=trusted, repair_after_s=0.5)
    return DeviceAgent(config, BrokerAddress.parse(url), hardware), output


def _cached_play(agent: DeviceAgent, broadcast_id: str, msg_id: str) -> Command:
    """A play command for content the cluster already holds (so no upload is needed)."""
    data = broadcast_id.encode() * 50
    ref = ContentRef(hashlib.sha256(data).hexdigest(), len(data), "opus", 200)
    cache = ContentCache(agent.config.cache_dir)
    if not cache.has(ref.sha256):
        download = cache.begin(ref)
        download.write(chunks.unpack(chunks.pack(0, 1, data)))
        cache.finish(download)
    agent.cache = ContentCache(agent.config.cache_dir)
    now = _now()
    return Command(msg_id, now, now + 60_000, Priority.EMERGENCY, Play(broadcast_id, (ref,)))


async def test_only_signed_commands_by_a_trusted_key_are_acted_on_and_refusals_are_reported(
    embedded_broker: EmbeddedBroker, tmp_path: Path
) -> None:
    signer = _signer()
    device = f"sec-{secrets.token_hex(3)}"
    agent, output = _agent(
        embedded_broker.url, tmp_path, device, TrustedKeys.of([signer.private.public_key()])
    )
    watcher = Inbox()
    intruder = Link(BrokerAddress.parse(embedded_broker.url), watcher, client_id=f"intruder-{device}")
    await intruder.subscribe([topics.device_status(device), topics.device_events(device)])
    own = topics.device_cmd(device)
    async with connected(agent, intruder):
        forged = [
            _cached_play(agent, "bc-false-alarm", "unsigned-1"),  # unsigned
            _signer().sign_for(_cached_play(agent, "bc-false-alarm", "other-key-1"), own),  # other key
            dataclasses.replace(
                signer.sign_for(_cached_play(agent, "bc-real", "tampered-1"), own),
                body=_cached_play(agent, "bc-false-alarm", "x").body,
            ),
        ]
        for command in forged:
            await intruder.publish(topics.device_cmd(device), codec.encode(command))
        await watcher.wait_for(
            lambda w: any(s.rejected_commands == 3 for s in w.statuses()), "a status with 3 refusals"
        )
        assert agent.counters.rejected == 3
        assert output.played == [] and watcher.events() == []
        genuine = signer.sign_for(_cached_play(agent, "bc-real", "tampered-1"), own)  # same id as the forgery
        await intruder.publish(topics.device_cmd(device), codec.encode(genuine))
        await watcher.wait_for(lambda w: w.finished("bc-real") == 1, "the genuine command to play")
        assert len(output.played) == 1


async def test_a_redelivered_command_never_plays_twice_even_across_a_power_cut(
    embedded_broker: EmbeddedBroker, tmp_path: Path
) -> None:
    signer = _signer()
    trusted = TrustedKeys.of([signer.private.public_key()])
    device = f"sec-{secrets.token_hex(3)}"
    agent, output = _agent(embedded_broker.url, tmp_path, device, trusted)
    watcher = Inbox()
    sender = Link(BrokerAddress.parse(embedded_broker.url), watcher, client_id=f"ctl-{device}")
    await sender.subscribe([topics.device_events(device)])
    unsigned = _cached_play(agent, "bc-once", "once-1")
    command = signer.sign_for(unsigned, topics.device_cmd(device))
    zone = topics.zone_cmd(f"{device}-zone")
    async with connected(agent, sender):
        await sender.publish(zone, codec.encode(signer.sign_for(unsigned, zone)))
        for _ in range(3):  # QoS 1 redelivery, after the same command on a zone topic
            await sender.publish(topics.device_cmd(device), codec.encode(command))
        await _handled_everything_before(sender, watcher, signer, device)
        await watcher.wait_for(lambda w: w.finished("bc-once") >= 1, "the command to play once")
    assert agent.counters.duplicates == 3 and len(output.played) == 1
    # Power cut: a new agent process on the same storage gets the command again.
    again, output2 = _agent(embedded_broker.url, tmp_path, device, trusted)
    async with connected(again, sender):
        await sender.publish(topics.device_cmd(device), codec.encode(command))
        await _handled_everything_before(sender, watcher, signer, device)
    assert again.counters.duplicates == 1 and output2.played == []
    assert watcher.finished("bc-once") == 1


async def _handled_everything_before(sender: Link, watcher: Inbox, signer: Signer, device: str) -> None:
    """Ping the cluster and wait for its ack: it handles its commands in order, so all before too."""
    ping = signer.sign_for(_ping(), topics.device_cmd(device))
    await sender.publish(topics.device_cmd(device), codec.encode(ping))
    await watcher.wait_for(lambda w: w.acked(ping.msg_id), "the ping's ack")


def test_the_signed_example_of_the_protocol_document_verifies() -> None:
    doc = (Path(__file__).parent.parent / "docs" / "protocol.md").read_text(encoding="utf-8")
    key_line = next(line for line in doc.splitlines() if line.startswith("ed25519 "))
    seed_signer = Signer(Ed25519PrivateKey.from_private_bytes(bytes(range(32))))
    assert key_line == seed_signer.public_line()
    start = doc.index('"kind": "ping",\n  "id": "3b9d0c7e5a214f68"') - len('{\n  "v": 1,\n  ')
    example = codec.decode_command(doc[start : doc.index("}\n```", start) + 1].encode())
    TrustedKeys.parse(key_line).verify(example)
    assert seed_signer.sign(example) == example


async def test_a_command_replayed_on_another_topic_is_refused(
    mosquitto: MosquittoProcess, tmp_path: Path
) -> None:
    """Captured on a commune's zone topic and replayed on the province's: no cluster plays it."""
    signer = _signer()
    trusted = TrustedKeys.of([signer.private.public_key()])
    tag = secrets.token_hex(3)
    commune, province = f"commune-{tag}", f"province-{tag}"
    inside, outside = f"in-{tag}", f"out-{tag}"
    url = mosquitto.url
    agent_in, played_in = _zoned_agent(url, tmp_path, inside, (commune, province), trusted)
    agent_out, played_out = _zoned_agent(url, tmp_path, outside, (province,), trusted)
    sender = Link(BrokerAddress.parse(url), Inbox(), client_id=f"ctl-{tag}")
    captured = signer.sign_for(_cached_play(agent_in, "bc-commune", "commune-1"), topics.zone_cmd(commune))
    _cached_play(agent_out, "bc-commune", "x")  # the content is cached there too: only the topic stops it
    async with connected(agent_in, agent_out, sender):
        await sender.publish(topics.zone_cmd(province), codec.encode(captured))
        await sender.publish(topics.device_cmd(outside), codec.encode(captured))
        await wait_until(
            lambda: agent_in.counters.rejected == 1 and agent_out.counters.rejected == 2, "both refusals"
        )
        assert played_in.played == [] and played_out.played == []
        await sender.publish(topics.zone_cmd(commune), codec.encode(captured))
        await wait_until(lambda: len(played_in.played) == 1, "the genuine copy to play")
    assert played_out.played == []


def _zoned_agent(
    url: str, root: Path, device: str, zones: tuple[str, ...], trusted: TrustedKeys
) -> tuple[DeviceAgent, SimOutput]:
    output = SimOutput(time_scale=20)
    hardware = Hardware(output, SimAmplifier(), SimTelemetry(), SimClock())
    config = AgentConfig(device, zones, root / device, trusted_keys=trusted, repair_after_s=0.5)
    return DeviceAgent(config, BrokerAddress.parse(url), hardware), output


def test_the_test_vector_of_the_protocol_document_is_recomputed() -> None:
    doc = (Path(__file__).parent.parent / "docs" / "protocol.md").read_text(encoding="utf-8")
    section = doc[doc.index("**Test vector**") :]
    start = section.index("```json\n") + len("```json\n")
    example = codec.decode_command(section[start : section.index("\n```", start)].encode())
    canonical = section[section.index("```text\n") + len("```text\n") :].split("\n", 1)[0]
    digest = section.split("SHA-256 of the canonical bytes: `", 1)[1].split("`", 1)[0]
    assert codec.signing_bytes(example) == canonical.encode("utf-8")
    assert hashlib.sha256(canonical.encode("utf-8")).hexdigest() == digest
    seed_signer = Signer(Ed25519PrivateKey.from_private_bytes(bytes(range(32))))
    assert seed_signer.sign_for(dataclasses.replace(example, signature=None), example.to or "") == example
    TrustedKeys.of([seed_signer.private.public_key()]).verify_on(example, topics.zone_cmd("xa-an-hiep"))


def _jcs(value: object) -> str:
    """RFC 8785 for the JSON values a command may hold: an encoder independent of json.dumps."""
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, int):
        assert abs(value) <= 2**53 - 1
        return str(value)
    if isinstance(value, str):
        return '"' + "".join(_jcs_char(c) for c in value) + '"'
    if isinstance(value, list):
        return "[" + ",".join(_jcs(v) for v in value) + "]"
    assert isinstance(value, dict)
    keys = sorted(value, key=lambda k: k.encode("utf-16-be"))
    return "{" + ",".join(f"{_jcs(k)}:{_jcs(value[k])}" for k in keys) + "}"


_SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def _jcs_char(c: str) -> str:
    if c in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[c]
    return f"\\u{ord(c):04x}" if ord(c) < 0x20 else c


@settings(max_examples=300, deadline=None)
@given(
    title=st.text(st.characters(exclude_categories=("Cc",)), max_size=MAX_TEXT_LENGTH),
    volume=st.none() | st.integers(0, 100),
    stamp=st.integers(0, MAX_TIMESTAMP_MS - 1),
)
def test_signing_bytes_are_rfc_8785_for_every_command(title: str, volume: int | None, stamp: int) -> None:
    ref = ContentRef(hashlib.sha256(title.encode()).hexdigest(), 1 + len(title), "opus", 1000)
    play = Play("bc-jcs", (ref,), start_at_ms=stamp, volume=volume, title=title)
    command = Command("jcs-1", stamp, stamp + 1, Priority.EMERGENCY, play, to=topics.zone_cmd("z"))
    wire = command.to_wire()
    del wire["sig"]
    assert codec.signing_bytes(command) == _jcs(wire).encode("utf-8")
