"""The topic tree of protocol v1, as pure string functions."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from speakerctl.errors import ProtocolError
from speakerctl.protocol.limits import MAX_ID_LENGTH, TOPIC_ROOT

ID_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"
"""A device, zone or stream id (at most MAX_ID_LENGTH characters)."""
SHA256_PATTERN = r"^[0-9a-f]{64}$"
_ID = re.compile(ID_PATTERN)
_SHA256 = re.compile(SHA256_PATTERN)


def check_id(value: str, what: str = "id") -> str:
    """Return `value` if it is a valid device or zone id, else raise ProtocolError."""
    if not isinstance(value, str) or not value or len(value) > MAX_ID_LENGTH:
        raise ProtocolError(f"{what} must be 1..{MAX_ID_LENGTH} characters, got {value!r}")
    if not _ID.fullmatch(value):
        raise ProtocolError(f"{what} {value!r} may hold only a-z, 0-9, '-' and '_'")
    return value


def check_sha256(value: str) -> str:
    """Return `value` if it is a lowercase hex sha256 digest."""
    if not isinstance(value, str) or not _SHA256.fullmatch(value):
        raise ProtocolError(f"not a sha256 hex digest: {value!r}")
    return value


def device_cmd(device_id: str) -> str:
    """Commands addressed to one device."""
    return f"{TOPIC_ROOT}/dev/{check_id(device_id, 'device id')}/cmd"


def device_status(device_id: str) -> str:
    """The retained status of one device (its Last Will lands here too)."""
    return f"{TOPIC_ROOT}/dev/{check_id(device_id, 'device id')}/status"


def device_events(device_id: str) -> str:
    """Delivery events and content requests from one device."""
    return f"{TOPIC_ROOT}/dev/{check_id(device_id, 'device id')}/evt"


def zone_cmd(zone_id: str) -> str:
    """Commands for every device in a zone or below it."""
    return f"{TOPIC_ROOT}/zone/{check_id(zone_id, 'zone id')}/cmd"


def content(sha256: str) -> str:
    """Binary chunk frames of one content item."""
    return f"{TOPIC_ROOT}/content/{check_sha256(sha256)}"


ALL_STATUS = f"{TOPIC_ROOT}/dev/+/status"
ALL_EVENTS = f"{TOPIC_ROOT}/dev/+/evt"
SHARE_PREFIX = "$share"


def shared(topic_filter: str, group: str) -> str:
    """`topic_filter` in the shared subscription `group` (MQTT 5, §4.8.2); as is if `group` is empty.

    The broker hands each message to one member of the group: N controllers split the ingestion.
    """
    if not group:
        return topic_filter
    if any(c in group for c in "/+#") or not group.isprintable():
        raise ProtocolError(f"shared subscription group {group!r} may not hold '/', '+', '#'")
    return f"{SHARE_PREFIX}/{group}/{topic_filter}"


class Channel(StrEnum):
    """What a topic carries."""

    DEVICE_CMD = "device_cmd"
    ZONE_CMD = "zone_cmd"
    STATUS = "status"
    EVENTS = "events"
    CONTENT = "content"
    LIVE = "live"


@dataclass(frozen=True, slots=True)
class ParsedTopic:
    """A topic of the tree, split into its channel and its key (device, zone or hash)."""

    channel: Channel
    key: str


_SUFFIXES = {"cmd": Channel.DEVICE_CMD, "status": Channel.STATUS, "evt": Channel.EVENTS}


def parse(topic: str) -> ParsedTopic:
    """Split a topic of the v1 tree, or raise ProtocolError."""
    parts = topic.split("/")
    if len(parts) < 4 or "/".join(parts[:2]) != TOPIC_ROOT:
        raise ProtocolError(f"topic outside {TOPIC_ROOT}: {topic!r}")
    kind, key = parts[2], parts[3]
    if kind == "content" and len(parts) == 4:
        return ParsedTopic(Channel.CONTENT, check_sha256(key))
    if kind == "live" and len(parts) == 4:
        return ParsedTopic(Channel.LIVE, check_id(key, "stream id"))
    if kind == "zone" and parts[4:] == ["cmd"]:
        return ParsedTopic(Channel.ZONE_CMD, check_id(key, "zone id"))
    if kind == "dev" and len(parts) == 5 and parts[4] in _SUFFIXES:
        return ParsedTopic(_SUFFIXES[parts[4]], check_id(key, "device id"))
    raise ProtocolError(f"unknown topic: {topic!r}")
