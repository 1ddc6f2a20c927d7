"""Live audio (protocol v1.2): the live_start/live_stop commands, the live event, signed binary frames.

    frame = magic "PAL1" | seq u32 | capture_ts u64 (ms, controller clock) | n u8
            | n × packet length u16 | n Opus packets | Ed25519 signature (64)

The signature is by the stream's own key, whose public half travels in the signed `live_start`; it
covers the stream id, then every byte of the frame before it, so a frame cannot be forged, altered or
replayed into another stream by a party that can only publish on the broker.
"""

from __future__ import annotations

import base64
import binascii
import struct
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from speakerctl.errors import ProtocolError, SignatureError
from speakerctl.protocol import fields as f
from speakerctl.protocol.limits import (
    LIVE_HEADER_SIZE,
    LIVE_MAGIC,
    LIVE_PACKET_MS,
    LIVE_SIGNATURE_SIZE,
    MAX_COUNT,
    MAX_LIVE_DELAY_MS,
    MAX_LIVE_FRAME,
    MAX_LIVE_FRAME_MS,
    MAX_LIVE_PACKET,
    MAX_LIVE_PACKETS,
    MAX_LIVE_STALL_MS,
    MIN_LIVE_DELAY_MS,
    MIN_LIVE_STALL_MS,
    TOPIC_ROOT,
)
from speakerctl.protocol.topics import check_id

Wire = dict[str, Any]
LIVE_FEATURE = "live"
"""The token a cluster lists in its status `features` when it plays live streams (v1.2)."""
LIVE_CODEC = "opus"
_HEAD = struct.Struct(">4sIQB")
_MAX_SEQ = 2**32 - 1


def live_topic(stream_id: str) -> str:
    """The frames of one live stream."""
    return f"{TOPIC_ROOT}/live/{check_id(stream_id, 'stream id')}"


def public_key_text(public: Ed25519PublicKey) -> str:
    """The stream key as `live_start` carries it: base64url of the raw 32 bytes, no padding."""
    raw = public.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def parse_public_key(text: str) -> Ed25519PublicKey:
    """The stream key of a `live_start`, or ProtocolError."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        return Ed25519PublicKey.from_public_bytes(raw)
    except (binascii.Error, ValueError) as exc:
        raise ProtocolError(f"live key is not a base64url Ed25519 public key: {exc}") from exc


class LiveEnd(StrEnum):
    """Why a live stream ended (or was refused) on a cluster."""

    STOPPED = "stopped"
    STALLED = "stalled"
    PREEMPTED = "preempted"
    UNSUPPORTED_CODEC = "unsupported_codec"
    FINISHED = "finished"


class LiveState(StrEnum):
    """What a live event reports."""

    STARTED = "started"
    UNDERRUN = "underrun"
    FRAMES_LOST = "frames_lost"
    ENDED = "ended"


@dataclass(frozen=True, slots=True)
class LiveStart:
    """Play a live stream: subscribe to its frames and play each at capture_ts + delay_ms."""

    stream_id: str
    key: str
    packet_ms: int = 20
    frame_ms: int = 200
    delay_ms: int = 1500
    stall_ms: int = 10_000
    codec: str = LIVE_CODEC
    sample_rate: int = 48_000
    channels: int = 1
    title: str = ""
    source: str = ""

    kind = "live_start"

    def __post_init__(self) -> None:
        check_id(self.stream_id, "stream id")
        parse_public_key(self.key)
        if self.packet_ms not in LIVE_PACKET_MS:
            raise ProtocolError(f"packet_ms must be one of {LIVE_PACKET_MS}, got {self.packet_ms}")
        f.check_range(self.frame_ms, self.packet_ms, MAX_LIVE_FRAME_MS, "frame_ms")
        if self.frame_ms % self.packet_ms:
            raise ProtocolError("frame_ms must be a multiple of packet_ms")
        f.check_range(self.delay_ms, MIN_LIVE_DELAY_MS, MAX_LIVE_DELAY_MS, "delay_ms")
        f.check_range(self.stall_ms, MIN_LIVE_STALL_MS, MAX_LIVE_STALL_MS, "stall_ms")
        f.check_token(self.codec, "codec")
        f.check_range(self.sample_rate, 48_000, 48_000, "sample_rate")
        f.check_range(self.channels, 1, 2, "channels")
        f.check_text(self.title, "title")
        f.check_text(self.source, "source")

    @property
    def broadcast_id(self) -> str:
        """The id the player and status know this stream by."""
        return self.stream_id

    @property
    def packets_per_frame(self) -> int:
        """Opus packets in every full frame."""
        return self.frame_ms // self.packet_ms

    def to_wire(self) -> Wire:
        """Wire dict."""
        return {
            "stream_id": self.stream_id,
            "key": self.key,
            "codec": self.codec,
            "sample_rate": self.sample_rate,
            "channels": self.channels,
            "packet_ms": self.packet_ms,
            "frame_ms": self.frame_ms,
            "delay_ms": self.delay_ms,
            "stall_ms": self.stall_ms,
            "title": self.title,
            "source": self.source,
        }

    @classmethod
    def from_wire(cls, w: Wire) -> LiveStart:
        """Parse and validate."""
        return cls(
            stream_id=f.req(w, "stream_id", str),
            key=f.req(w, "key", str),
            codec=f.req(w, "codec", str),
            sample_rate=f.req(w, "sample_rate", int),
            channels=f.req(w, "channels", int),
            packet_ms=f.req(w, "packet_ms", int),
            frame_ms=f.req(w, "frame_ms", int),
            delay_ms=f.req(w, "delay_ms", int),
            stall_ms=f.req(w, "stall_ms", int),
            title=f.opt(w, "title", str) or "",
            source=f.opt(w, "source", str) or "",
        )


@dataclass(frozen=True, slots=True)
class LiveStop:
    """End a live stream on every cluster that plays it."""

    stream_id: str
    last_seq: int | None = None
    """The stream's last frame: a cluster plays up to it before it stops (it may arrive after this)."""

    kind = "live_stop"

    def __post_init__(self) -> None:
        check_id(self.stream_id, "stream id")
        if self.last_seq is not None:
            f.check_range(self.last_seq, 0, _MAX_SEQ, "last_seq")

    @property
    def broadcast_id(self) -> str:
        """The id the player knows the stream by."""
        return self.stream_id

    def to_wire(self) -> Wire:
        """Wire dict."""
        return {"stream_id": self.stream_id, "last_seq": self.last_seq}

    @classmethod
    def from_wire(cls, w: Wire) -> LiveStop:
        """Parse and validate."""
        return cls(stream_id=f.req(w, "stream_id", str), last_seq=f.opt(w, "last_seq", int))


@dataclass(frozen=True, slots=True)
class LiveEvent:
    """A cluster's report on one live stream: started, an underrun, frames lost, or its end."""

    msg_id: str
    device_id: str
    ts_ms: int
    stream_id: str
    state: LiveState
    played: int = 0
    lost: int = 0
    underruns: int = 0
    forged: int = 0
    reason: LiveEnd | None = None
    detail: str = ""

    kind = "live"

    def __post_init__(self) -> None:
        f.check_event_head(self.msg_id, self.device_id, self.ts_ms)
        check_id(self.stream_id, "stream id")
        for name in ("played", "lost", "underruns", "forged"):
            f.check_range(getattr(self, name), 0, MAX_COUNT, name)
        f.check_text(self.detail, "detail")
        if self.state is LiveState.ENDED and self.reason is None:
            raise ProtocolError("an ended live event needs a reason")

    def to_wire(self) -> Wire:
        """Wire dict."""
        return {
            **f.event_head(self.kind, self.msg_id, self.device_id, self.ts_ms),
            "stream_id": self.stream_id,
            "state": self.state.value,
            "played": self.played,
            "lost": self.lost,
            "underruns": self.underruns,
            "forged": self.forged,
            "reason": self.reason.value if self.reason else None,
            "detail": self.detail,
        }

    @classmethod
    def from_wire(cls, w: Wire) -> LiveEvent:
        """Parse and validate."""
        reason = f.opt(w, "reason", str)
        return cls(
            msg_id=f.req(w, "id", str),
            device_id=f.req(w, "device_id", str),
            ts_ms=f.req(w, "ts", int),
            stream_id=f.req(w, "stream_id", str),
            state=f.enum(LiveState, w.get("state"), "state"),
            played=f.opt(w, "played", int) or 0,
            lost=f.opt(w, "lost", int) or 0,
            underruns=f.opt(w, "underruns", int) or 0,
            forged=f.opt(w, "forged", int) or 0,
            reason=f.enum(LiveEnd, reason, "reason") if reason is not None else None,
            detail=f.opt(w, "detail", str) or "",
        )


@dataclass(frozen=True, slots=True)
class LiveFrame:
    """Consecutive Opus packets of a stream, stamped with the capture time of the first."""

    seq: int
    capture_ts_ms: int
    packets: tuple[bytes, ...]

    def __post_init__(self) -> None:
        f.check_range(self.seq, 0, _MAX_SEQ, "seq")
        f.check_timestamp(self.capture_ts_ms, "capture_ts")
        if not 0 < len(self.packets) <= MAX_LIVE_PACKETS:
            raise ProtocolError(f"a live frame carries 1..{MAX_LIVE_PACKETS} packets")
        if any(not 0 < len(p) <= MAX_LIVE_PACKET for p in self.packets):
            raise ProtocolError(f"an Opus packet is 1..{MAX_LIVE_PACKET} bytes")


def _body(frame: LiveFrame) -> bytes:
    head = _HEAD.pack(LIVE_MAGIC, frame.seq, frame.capture_ts_ms, len(frame.packets))
    lengths = struct.pack(f">{len(frame.packets)}H", *(len(p) for p in frame.packets))
    return head + lengths + b"".join(frame.packets)


def _signed(stream_id: str, body: bytes) -> bytes:
    return stream_id.encode("ascii") + b"\0" + body


def pack_frame(frame: LiveFrame, stream_id: str, key: Ed25519PrivateKey) -> bytes:
    """The frame's bytes, signed by the stream key; ProtocolError if over MAX_LIVE_FRAME."""
    body = _body(frame)
    payload = body + key.sign(_signed(stream_id, body))
    if len(payload) > MAX_LIVE_FRAME:
        raise ProtocolError(f"live frame is {len(payload)} bytes, limit {MAX_LIVE_FRAME}")
    return payload


def unpack_frame(payload: bytes, stream_id: str, key: Ed25519PublicKey) -> LiveFrame:
    """A frame whose signature checks, or SignatureError (forged) / ProtocolError (malformed)."""
    if not LIVE_HEADER_SIZE + LIVE_SIGNATURE_SIZE < len(payload) <= MAX_LIVE_FRAME:
        raise ProtocolError(f"live frame of {len(payload)} bytes is out of bounds")
    body, signature = payload[:-LIVE_SIGNATURE_SIZE], payload[-LIVE_SIGNATURE_SIZE:]
    try:
        key.verify(signature, _signed(stream_id, body))
    except InvalidSignature as exc:
        raise SignatureError(f"live frame of stream {stream_id} has a bad signature") from exc
    return _parse_body(body)


def _parse_body(body: bytes) -> LiveFrame:
    magic, seq, capture_ts, count = _HEAD.unpack_from(body)
    if magic != LIVE_MAGIC:
        raise ProtocolError(f"live frame magic {magic!r} is not {LIVE_MAGIC!r}")
    at = LIVE_HEADER_SIZE + 2 * count
    if count == 0 or len(body) < at:
        raise ProtocolError("live frame packet table is truncated")
    lengths = struct.unpack_from(f">{count}H", body, LIVE_HEADER_SIZE)
    if at + sum(lengths) != len(body):
        raise ProtocolError("live frame packet lengths do not add up to its size")
    packets = []
    for length in lengths:
        packets.append(body[at : at + length])
        at += length
    return LiveFrame(seq, capture_ts, tuple(packets))
