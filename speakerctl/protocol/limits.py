"""Protocol constants shared by the controller and the device firmware; docs/protocol.md quotes them."""

from __future__ import annotations

from typing import Final

PROTOCOL_VERSION: Final = 1
TOPIC_ROOT: Final = "pa/v1"

CHUNK_SIZE: Final = 16_384
"""Bytes of content per chunk frame (the last chunk may be shorter)."""
CHUNK_MAGIC: Final = b"PAC1"
CHUNK_HEADER_SIZE: Final = 44
"""magic (4) + index u32 (4) + total u32 (4) + sha256 of the chunk data (32)."""
MAX_CHUNK_PAYLOAD: Final = CHUNK_HEADER_SIZE + CHUNK_SIZE
MAX_CONTENT_SIZE: Final = 64 * 1024 * 1024
MAX_CHUNKS: Final = MAX_CONTENT_SIZE // CHUNK_SIZE

MAX_JSON_PAYLOAD: Final = 16_384
"""Largest JSON message (command, event, status) either side accepts, in bytes."""
MAX_ID_LENGTH: Final = 64
MAX_TEXT_LENGTH: Final = 200
MAX_CACHED_LISTED: Final = 32
"""At most this many cached content hashes are listed in a status message."""
MAX_MISSING_RANGES: Final = 64
MAX_TARGETS: Final = 256
"""Zones and devices one broadcast may name (the controller enforces it)."""
BROKER_MAX_PAYLOAD: Final = 20_480
"""The smallest broker payload limit the protocol must fit (e.g. Mosquitto message_size_limit)."""
MAX_VARIANTS: Final = 4
"""At most this many encodings of one bulletin in a play command."""
MAX_TIMESTAMP_MS: Final = 2**53 - 1
"""Time stamps are integers up to 2^53 - 1 ms, exact in a double and in int64."""
SEEN_IDS: Final = 4096
"""A device remembers at least this many recent command ids to drop redelivered commands."""
