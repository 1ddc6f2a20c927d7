"""The MQTT contract as an AsyncAPI 3.0 document, built from the protocol's own data.

Topics come from the channel table below (checked against `topics.py` by tests/test_asyncapi.py),
message kinds from the parsers' tables (`COMMAND_KINDS`, `ZONE_KINDS`, `EVENT_KINDS`), every bound
from `limits.py`, every enumeration from its enum. The document is written from the controller's side:
it sends commands, content chunks and live frames, and receives statuses and events.
`speakerctl api asyncapi` prints it; docs/asyncapi.json is that output, and a test keeps the two equal.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from speakerctl.protocol import limits
from speakerctl.protocol.fields import TOKEN_PATTERN
from speakerctl.protocol.lifecycle import NEEDS_REASON, REPORTED
from speakerctl.protocol.limits import (
    CHUNK_SIZE,
    LIVE_PACKET_MS,
    MAX_CACHED_LISTED,
    MAX_CHUNK_PAYLOAD,
    MAX_CHUNKS,
    MAX_CLOCK_OFFSET_MS,
    MAX_CONTENT_SIZE,
    MAX_COUNT,
    MAX_DURATION_MS,
    MAX_ID_LENGTH,
    MAX_LIVE_DELAY_MS,
    MAX_LIVE_FRAME,
    MAX_LIVE_FRAME_MS,
    MAX_LIVE_STALL_MS,
    MAX_MISSING_RANGES,
    MAX_PERCENT,
    MAX_PROTOCOL_REPORTED,
    MAX_RSSI_DBM,
    MAX_STORAGE_FREE_MB,
    MAX_TEMPERATURE_C,
    MAX_TEXT_LENGTH,
    MAX_TIMESTAMP_MS,
    MAX_UPTIME_S,
    MAX_VARIANTS,
    MAX_ZONE_CHAIN,
    MIN_LIVE_DELAY_MS,
    MIN_LIVE_STALL_MS,
    MIN_RSSI_DBM,
    MIN_TEMPERATURE_C,
    PROTOCOL_MINOR,
    PROTOCOL_VERSION,
    TOPIC_ROOT,
)
from speakerctl.protocol.live import LiveEnd, LiveState
from speakerctl.protocol.messages import (
    AMPLIFIER_STATES,
    COMMAND_KINDS,
    EVENT_KINDS,
    NETWORKS,
    POWER_SOURCES,
    ZONE_KINDS,
    Priority,
    Reason,
)
from speakerctl.protocol.schedule import PreemptPolicy
from speakerctl.protocol.topics import ID_PATTERN, SHA256_PATTERN, Channel

Schema = dict[str, Any]
STATUS = "status"
CHUNK = "chunk"
LIVE_FRAME = "live_frame"
_MAX_SEQ = 2**32 - 1


@dataclass(frozen=True, slots=True)
class ChannelSpec:
    """One topic pattern of the tree: what it carries, who publishes it, with which QoS and retain flag."""

    channel: Channel
    address: str
    """The topic with its one variable part in braces, e.g. pa/v1/dev/{device}/cmd."""
    parameter: str
    parameter_pattern: str
    messages: tuple[str, ...]
    qos: int
    retain: bool
    controller_sends: bool
    description: str


def _json_messages(kinds: frozenset[str]) -> tuple[str, ...]:
    return tuple(sorted(kinds))


CHANNELS: tuple[ChannelSpec, ...] = (
    ChannelSpec(Channel.DEVICE_CMD, f"{TOPIC_ROOT}/dev/{{device}}/cmd", "device", ID_PATTERN,
                _json_messages(COMMAND_KINDS), 1, False, True,
                "Signed commands addressed to one cluster."),
    ChannelSpec(Channel.ZONE_CMD, f"{TOPIC_ROOT}/zone/{{zone}}/cmd", "zone", ID_PATTERN,
                _json_messages(ZONE_KINDS), 1, False, True,
                "Signed commands for every cluster whose zone chain holds the zone."),
    ChannelSpec(Channel.STATUS, f"{TOPIC_ROOT}/dev/{{device}}/status", "device", ID_PATTERN,
                (STATUS,), 1, True, False,
                "A cluster's retained status; its Last Will (an offline status) lands here too."),
    ChannelSpec(Channel.EVENTS, f"{TOPIC_ROOT}/dev/{{device}}/evt", "device", ID_PATTERN,
                _json_messages(EVENT_KINDS), 1, False, False,
                "Delivery events, content requests, acknowledgements and live reports of one cluster."),
    ChannelSpec(Channel.CONTENT, f"{TOPIC_ROOT}/content/{{sha256}}", "sha256", SHA256_PATTERN,
                (CHUNK,), 1, False, True,
                "Binary chunk frames of one content item, while clusters download it."),
    ChannelSpec(Channel.LIVE, f"{TOPIC_ROOT}/live/{{stream}}", "stream", ID_PATTERN,
                (LIVE_FRAME,), 0, False, True,
                "Signed binary frames of one live stream (QoS 0: a late frame is useless)."),
)  # fmt: skip
"""The topic tree: docs/protocol.md §3 and §18 in data."""


# -- the pieces every schema is made of --------------------------------------------------------------


def _int(lo: int, hi: int) -> Schema:
    return {"type": "integer", "minimum": lo, "maximum": hi}


def _nullable(schema: Schema) -> Schema:
    return {"oneOf": [schema, {"type": "null"}]}


def _object(properties: dict[str, Schema], required: list[str]) -> Schema:
    return {"type": "object", "properties": properties, "required": required}


ID: Schema = {"type": "string", "pattern": ID_PATTERN, "minLength": 1, "maxLength": MAX_ID_LENGTH}
TOKEN: Schema = {"type": "string", "pattern": TOKEN_PATTERN, "minLength": 1, "maxLength": MAX_ID_LENGTH}
SHA256: Schema = {"type": "string", "pattern": SHA256_PATTERN}
TEXT: Schema = {
    "type": "string",
    "maxLength": MAX_TEXT_LENGTH,
    "pattern": "^[^\\u0000-\\u001f\\u007f-\\u009f]*$",
}
TIMESTAMP: Schema = _int(0, MAX_TIMESTAMP_MS) | {"description": "Milliseconds since the Unix epoch, UTC."}
PERCENT = _int(0, MAX_PERCENT)
COUNT = _int(0, MAX_COUNT)
VERSION: Schema = {"const": PROTOCOL_VERSION}


def _enum(values: object) -> Schema:
    return {"type": "string", "enum": sorted(str(v) for v in values)}  # type: ignore[attr-defined]


# -- commands ------------------------------------------------------------------------------------------

CONTENT_REF = _object(
    {
        "sha256": SHA256,
        "size": _int(1, MAX_CONTENT_SIZE),
        "codec": TOKEN,
        "duration_ms": _int(0, MAX_DURATION_MS),
        "chunk_size": {"const": CHUNK_SIZE},
        "chunks": _int(1, MAX_CHUNKS) | {"description": "ceil(size / chunk_size)"},
    },
    ["sha256", "size", "codec", "duration_ms", "chunk_size", "chunks"],
)
BODIES: dict[str, Schema] = {
    "play": _object(
        {
            "broadcast_id": TOKEN,
            "content": {"type": "array", "items": CONTENT_REF, "minItems": 1, "maxItems": MAX_VARIANTS},
            "start_at": _nullable(TIMESTAMP),
            "volume": _nullable(PERCENT),
            "title": TEXT,
            "on_preempt": _enum(p.value for p in PreemptPolicy) | {"default": PreemptPolicy.DROP.value},
        },
        ["broadcast_id", "content"],
    ),
    "stop": _object({"broadcast_id": TOKEN}, ["broadcast_id"]),
    "set_volume": _object({"volume": PERCENT}, ["volume"]),
    "reboot": _object({}, []),
    "ping": _object({}, []),
    "configure": _object(
        {
            "zones": {
                "type": "array",
                "items": ID,
                "minItems": 1,
                "maxItems": MAX_ZONE_CHAIN,
                "uniqueItems": True,
            }
        },
        ["zones"],
    ),
    "live_start": _object(
        {
            "stream_id": ID,
            "key": {"type": "string", "description": "base64url of the stream's raw Ed25519 public key"},
            "codec": TOKEN,
            "sample_rate": {"const": 48_000},
            "channels": _int(1, 2),
            "packet_ms": {"type": "integer", "enum": list(LIVE_PACKET_MS)},
            "frame_ms": _int(min(LIVE_PACKET_MS), MAX_LIVE_FRAME_MS)
            | {"description": "a multiple of packet_ms"},
            "delay_ms": _int(MIN_LIVE_DELAY_MS, MAX_LIVE_DELAY_MS),
            "stall_ms": _int(MIN_LIVE_STALL_MS, MAX_LIVE_STALL_MS),
            "title": TEXT,
            "source": TEXT,
        },
        [
            "stream_id",
            "key",
            "codec",
            "sample_rate",
            "channels",
            "packet_ms",
            "frame_ms",
            "delay_ms",
            "stall_ms",
        ],
    ),
    "live_stop": _object({"stream_id": ID, "last_seq": _nullable(_int(0, _MAX_SEQ))}, ["stream_id"]),
}


def command(kind: str) -> Schema:
    """The signed envelope carrying one kind of command body."""
    return _object(
        {
            "v": VERSION,
            "kind": {"const": kind},
            "id": TOKEN,
            "issued_at": TIMESTAMP,
            "expires_at": TIMESTAMP,
            "priority": {"type": "string", "enum": [p.wire for p in Priority]},
            "sig": _nullable({"type": "string", "description": "Ed25519 signature, base64 (§4.4)"}),
            "to": {"type": "string", "description": "The command topic this copy is addressed to (signed)"},
            "body": BODIES[kind],
        },
        ["v", "kind", "id", "issued_at", "expires_at", "priority", "body"],
    )


# -- events and status ---------------------------------------------------------------------------------


def event(kind: str, properties: dict[str, Schema], required: list[str]) -> Schema:
    """A cluster's event: the common head, then its own fields."""
    head = {"v": VERSION, "kind": {"const": kind}, "id": TOKEN, "device_id": ID, "ts": TIMESTAMP}
    return _object(head | properties, ["v", "kind", "id", "device_id", "ts", *required])


EVENTS: dict[str, Schema] = {
    "delivery": event(
        "delivery",
        {
            "broadcast_id": TOKEN,
            "state": _enum(s.value for s in REPORTED),
            "reason": _nullable(_enum(r.value for r in Reason))
            | {"description": "required when state is " + " or ".join(sorted(s.value for s in NEEDS_REASON))},
            "detail": TEXT,
            "cached": {"type": "boolean"},
            "sha256": _nullable(SHA256),
        },
        ["broadcast_id", "state"],
    ),
    "content_request": event(
        "content_request",
        {
            "sha256": SHA256,
            "missing": {
                "type": "array",
                "minItems": 1,
                "maxItems": MAX_MISSING_RANGES,
                "items": {
                    "type": "array",
                    "items": _int(0, MAX_CHUNKS - 1),
                    "minItems": 2,
                    "maxItems": 2,
                    "description": "an inclusive range [first, last] of chunk indexes",
                },
            },
        },
        ["sha256", "missing"],
    ),
    "ack": event(
        "ack", {"command_id": TOKEN, "ok": {"type": "boolean"}, "detail": TEXT}, ["command_id", "ok"]
    ),
    "live": event(
        "live",
        {
            "stream_id": ID,
            "state": _enum(s.value for s in LiveState),
            "played": COUNT,
            "lost": COUNT,
            "underruns": COUNT,
            "forged": COUNT,
            "reason": _nullable(_enum(r.value for r in LiveEnd))
            | {"description": "required when state is ended"},
            "detail": TEXT,
        },
        ["stream_id", "state"],
    ),
}

STATUS_SCHEMA = _object(
    {
        "v": VERSION,
        "device_id": ID,
        "online": {"type": "boolean"},
        "ts": TIMESTAMP,
        "protocol": _int(1, MAX_PROTOCOL_REPORTED),
        "protocol_minor": _int(0, MAX_PROTOCOL_REPORTED),
        "firmware": TEXT,
        "model": TEXT,
        "volume": PERCENT,
        "playing": _nullable(TOKEN),
        "uptime_s": _int(0, MAX_UPTIME_S),
        "link": _object(
            {"network": _enum(NETWORKS), "rssi_dbm": _nullable(_int(MIN_RSSI_DBM, MAX_RSSI_DBM))}, ["network"]
        ),
        "power": _object({"source": _enum(POWER_SOURCES), "battery_pct": _nullable(PERCENT)}, ["source"]),
        "amplifier": _enum(AMPLIFIER_STATES),
        "cached": {"type": "array", "items": SHA256, "maxItems": MAX_CACHED_LISTED},
        "cached_count": COUNT,
        "temperature_c": _nullable(
            {"type": "number", "minimum": MIN_TEMPERATURE_C, "maximum": MAX_TEMPERATURE_C}
        ),
        "storage_free_mb": _nullable(_int(0, MAX_STORAGE_FREE_MB)),
        "clock_offset_ms": _nullable(_int(-MAX_CLOCK_OFFSET_MS, MAX_CLOCK_OFFSET_MS)),
        "rejected_commands": COUNT,
        "features": {"type": "array", "items": TOKEN, "maxItems": MAX_CACHED_LISTED},
    },
    ["v", "device_id", "online"],
)
"""A Last Will may carry only v, device_id and online; an online status carries the rest."""

BINARY: dict[str, Schema] = {
    CHUNK: {
        "type": "string",
        "format": "binary",
        "maxLength": MAX_CHUNK_PAYLOAD,
        "description": (
            f"magic {limits.CHUNK_MAGIC.decode()} | index u32 | total u32 | sha256 of the data (32 bytes) "
            f"| data (at most {CHUNK_SIZE} bytes); big-endian (§7)"
        ),
    },
    LIVE_FRAME: {
        "type": "string",
        "format": "binary",
        "maxLength": MAX_LIVE_FRAME,
        "description": (
            f"magic {limits.LIVE_MAGIC.decode()} | seq u32 | capture_ts u64 ms | n u8 "
            "| n × packet length u16 | n Opus packets "
            "| Ed25519 signature (64 bytes) over stream id, NUL, and the frame (§18)"
        ),
    },
}


def payloads() -> dict[str, Schema]:
    """Every message of the contract by name: command kinds, event kinds, the status, the binary frames."""
    commands = {kind: command(kind) for kind in sorted(COMMAND_KINDS)}
    return commands | {k: EVENTS[k] for k in sorted(EVENT_KINDS)} | {STATUS: STATUS_SCHEMA} | BINARY


# -- the document ---------------------------------------------------------------------------------------


def _limits() -> dict[str, Any]:
    """Every constant of limits.py, bytes as text: the numbers a firmware must honour."""
    out: dict[str, Any] = {}
    for name in sorted(n for n in vars(limits) if n.isupper()):
        value = getattr(limits, name)
        out[name] = (
            value.decode() if isinstance(value, bytes) else list(value) if isinstance(value, tuple) else value
        )
    return out


def _message(name: str, payload: Schema) -> Schema:
    binary = name in BINARY
    return {
        "name": name,
        "title": name.replace("_", " "),
        "contentType": "application/octet-stream" if binary else "application/json",
        "payload": payload,
    }


def _channel(spec: ChannelSpec) -> Schema:
    return {
        "address": spec.address,
        "description": spec.description,
        "parameters": {spec.parameter: {"description": f"matches {spec.parameter_pattern}"}},
        "messages": {m: {"$ref": f"#/components/messages/{m}"} for m in spec.messages},
    }


def _operation(spec: ChannelSpec) -> Schema:
    name = spec.channel.value
    return {
        "action": "send" if spec.controller_sends else "receive",
        "channel": {"$ref": f"#/channels/{name}"},
        "messages": [{"$ref": f"#/channels/{name}/messages/{m}"} for m in spec.messages],
        "bindings": {"mqtt": {"qos": spec.qos, "retain": spec.retain, "bindingVersion": "0.2.0"}},
    }


def document() -> dict[str, Any]:
    """The AsyncAPI 3.0 document of protocol v1."""
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "speakerctl MQTT contract",
            "version": f"{PROTOCOL_VERSION}.{PROTOCOL_MINOR}.0",
            "description": (
                "Protocol v1 between the speakerctl controller and loudspeaker clusters over an MQTT 3.1.1 "
                "broker, seen from the controller. docs/protocol.md is the full specification (signing, "
                "ordering, timing); this document is generated from the protocol code."
            ),
            "x-limits": _limits(),
        },
        "defaultContentType": "application/json",
        "channels": {spec.channel.value: _channel(spec) for spec in CHANNELS},
        "operations": {spec.channel.value: _operation(spec) for spec in CHANNELS},
        "components": {"messages": {name: _message(name, p) for name, p in payloads().items()}},
    }


def dumps(doc: dict[str, Any]) -> str:
    """The document as docs/asyncapi.json holds it."""
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
