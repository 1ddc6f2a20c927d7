"""JSON and binary codecs of protocol v1: bytes in, typed messages out, ProtocolError on anything else."""

from __future__ import annotations

import json
from typing import Any, Protocol

import orjson

from speakerctl.errors import PayloadTooLarge, ProtocolError
from speakerctl.protocol.limits import MAX_JSON_PAYLOAD
from speakerctl.protocol.messages import Command, Event, Status, event_from_wire
from speakerctl.protocol.provisioning import Bundle


class ToWire(Protocol):
    """Anything with a wire mapper."""

    def to_wire(self) -> dict[str, Any]:
        """Wire dict."""
        ...


def encode(message: ToWire) -> bytes:
    """UTF-8 JSON of a message, refusing anything over the payload limit."""
    data = json.dumps(message.to_wire(), ensure_ascii=False, separators=(",", ":")).encode()
    if len(data) > MAX_JSON_PAYLOAD:
        raise PayloadTooLarge(f"message is {len(data)} bytes, limit {MAX_JSON_PAYLOAD}")
    return data


def load_json(payload: bytes) -> object:
    """Parse a JSON payload within the size limit."""
    if len(payload) > MAX_JSON_PAYLOAD:
        raise PayloadTooLarge(f"payload is {len(payload)} bytes, limit {MAX_JSON_PAYLOAD}")
    try:
        # orjson: strict JSON straight from the bytes (no NaN/Infinity, no lone surrogates, nesting
        # capped at 1024), about 2x the standard decoder's speed on a status.
        return orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError(f"payload is not UTF-8 JSON: {exc}") from exc


def decode_command(payload: bytes) -> Command:
    """A command from its payload."""
    return Command.from_wire(load_json(payload))


def decode_event(payload: bytes) -> Event:
    """A device event or content request from its payload."""
    return event_from_wire(load_json(payload))


def decode_status(payload: bytes) -> Status:
    """A device status from its payload."""
    return Status.from_wire(load_json(payload))


def signing_bytes(command: Command) -> bytes:
    """The canonical bytes a signature covers: sorted-key compact JSON without `sig`."""
    wire = command.to_wire()
    del wire["sig"]
    return json.dumps(wire, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()


def decode_bundle(payload: bytes) -> Bundle:
    """A provisioning bundle's `bundle.json` from its bytes."""
    return Bundle.from_wire(load_json(payload))
