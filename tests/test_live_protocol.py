"""Live audio on the wire (v1.2): signed frames, live_start/live_stop commands, live events."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from speakerctl.errors import ProtocolError, SignatureError
from speakerctl.protocol import Command, Priority, Status, codec, messages, topics
from speakerctl.protocol.limits import MAX_LIVE_FRAME, MAX_LIVE_PACKET
from speakerctl.protocol.live import (
    LiveEnd,
    LiveEvent,
    LiveFrame,
    LiveStart,
    LiveState,
    LiveStop,
    live_topic,
    pack_frame,
    parse_public_key,
    public_key_text,
    unpack_frame,
)
from speakerctl.protocol.signing import Signer, TrustedKeys

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
OTHER = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
T0 = 1_767_225_600_000


def _start(**kw: object) -> LiveStart:
    return LiveStart("s1", public_key_text(KEY.public_key()), **kw)  # type: ignore[arg-type]


@given(
    seq=st.integers(0, 2**32 - 1),
    ts=st.integers(0, 7_258_118_400_000),
    packets=st.lists(st.binary(min_size=1, max_size=300), min_size=1, max_size=10),
)
def test_frames_round_trip(seq: int, ts: int, packets: list[bytes]) -> None:
    frame = LiveFrame(seq, ts, tuple(packets))
    assert unpack_frame(pack_frame(frame, "s1", KEY), "s1", KEY.public_key()) == frame


def test_a_frame_signed_by_another_key_is_refused() -> None:
    payload = pack_frame(LiveFrame(1, T0, (b"x" * 80,)), "s1", OTHER)
    with pytest.raises(SignatureError):
        unpack_frame(payload, "s1", KEY.public_key())


def test_a_frame_replayed_into_another_stream_is_refused() -> None:
    payload = pack_frame(LiveFrame(1, T0, (b"x" * 80,)), "s1", KEY)
    with pytest.raises(SignatureError):
        unpack_frame(payload, "s2", KEY.public_key())


def test_an_altered_frame_is_refused() -> None:
    payload = bytearray(pack_frame(LiveFrame(1, T0, (b"x" * 80,)), "s1", KEY))
    payload[8] ^= 1  # the capture time: a replay shifted in time
    with pytest.raises(SignatureError):
        unpack_frame(bytes(payload), "s1", KEY.public_key())


@pytest.mark.parametrize("payload", [b"", b"PAL1", b"\0" * (MAX_LIVE_FRAME + 1)])
def test_frames_out_of_bounds_are_malformed(payload: bytes) -> None:
    with pytest.raises(ProtocolError):
        unpack_frame(payload, "s1", KEY.public_key())


def test_frame_limits() -> None:
    with pytest.raises(ProtocolError):
        LiveFrame(0, T0, ())
    with pytest.raises(ProtocolError):
        LiveFrame(0, T0, (b"x" * (MAX_LIVE_PACKET + 1),))
    with pytest.raises(ProtocolError):
        pack_frame(LiveFrame(0, T0, (b"x" * MAX_LIVE_PACKET,) * 7), "s1", KEY)


@pytest.mark.parametrize(
    "bad",
    [
        {"packet_ms": 10},
        {"frame_ms": 30},
        {"frame_ms": 1020},
        {"delay_ms": 100},
        {"stall_ms": 500},
        {"sample_rate": 44_100},
    ],
)
def test_live_start_bounds(bad: dict[str, int]) -> None:
    with pytest.raises(ProtocolError):
        _start(**bad)


def test_live_start_rejects_a_bad_key() -> None:
    with pytest.raises(ProtocolError):
        LiveStart("s1", "not-a-key")


def test_live_commands_are_signed_zone_commands() -> None:
    signer, zone = Signer(KEY), topics.zone_cmd("xa-a")
    for body in (_start(title="Tiếp sóng VOV1", source="http://radio/vov1"), LiveStop("s1")):
        command = Command("c1", T0, T0 + 30_000, Priority.EMERGENCY, body)
        signed = signer.sign_for(command, zone)
        decoded = codec.decode_command(codec.encode(signed))
        assert decoded == signed
        TrustedKeys.of([KEY.public_key()]).verify_on(decoded, zone)
        assert messages.check_command_topic(zone, body.kind) == zone


def test_live_events_round_trip() -> None:
    event = LiveEvent("e1", "dev-1", T0, "s1", LiveState.ENDED, 10, 2, 1, 3, LiveEnd.STALLED, "no frame")
    assert codec.decode_event(codec.encode(event)) == event
    with pytest.raises(ProtocolError):
        LiveEvent("e1", "dev-1", T0, "s1", LiveState.ENDED)


def test_status_features_are_optional_on_the_wire() -> None:
    plain = Status("dev-1", online=True, ts_ms=T0)
    assert "features" not in plain.to_wire()
    live = Status("dev-1", online=True, ts_ms=T0, features=("live",))
    assert codec.decode_status(codec.encode(live)).features == ("live",)


def test_live_topic_parses() -> None:
    parsed = topics.parse(live_topic("s1"))
    assert (parsed.channel, parsed.key) == (topics.Channel.LIVE, "s1")


def test_stream_keys_round_trip() -> None:
    public = KEY.public_key()
    assert public_key_text(parse_public_key(public_key_text(public))) == public_key_text(public)


def test_the_documented_frame_test_vector() -> None:
    stream = Ed25519PrivateKey.from_private_bytes(bytes([7]) * 32)
    doc = (Path(__file__).resolve().parent.parent / "docs" / "protocol.md").read_text(encoding="utf-8")
    block = doc.split("one packet `f8 ff fe` is\n\n", 1)[1].split("\n\n", 1)[0]
    expected = bytes.fromhex("".join(block.split()))
    frame = LiveFrame(0, 1_767_225_600_000, (bytes.fromhex("f8fffe"),))
    assert pack_frame(frame, "live-20260101-0600-vov1", stream) == expected
    assert unpack_frame(expected, "live-20260101-0600-vov1", stream.public_key()) == frame
