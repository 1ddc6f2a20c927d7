"""Protocol constants shared by the controller and the device firmware; docs/protocol.md quotes them."""

from __future__ import annotations

from typing import Final

PROTOCOL_VERSION: Final = 1
PROTOCOL_MINOR: Final = 3
"""The minor revision of v1 this side speaks: 1.1 added the signed `to`, 1.2 the `configure` command,
1.3 compact replies (a cached bulletin answered by `playing` alone)."""
CONFIGURE_MINOR: Final = 2
"""A cluster must announce at least this minor revision in its status to be sent `configure`."""
COMPACT_MINOR: Final = 3
"""From this minor revision a cluster answers a play command whose content it holds with `playing` alone."""
COMPACT_FEATURE: Final = "compact"
"""The token a v1.3 cluster lists in its status `features` when it sends compact replies."""
MAX_ZONE_CHAIN: Final = 16
"""Most zones in a cluster's zone chain (root first), in provisioning and in `configure`."""
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
MAX_TIMESTAMP_MS: Final = 7_258_118_400_000
"""Time stamps are integers up to 2200-01-01T00:00:00Z in ms: exact in a double, int64 and any datetime."""
FUTURE_TOLERANCE_MS: Final = 60_000
"""A device time stamp more than this ahead of the controller's clock is logged and taken as "now"."""
MAX_COUNT: Final = 2**31 - 1
"""Largest counter in a status (cached_count, rejected_commands): a signed 32-bit integer."""
MAX_UPTIME_S: Final = 2**31 - 1
"""Largest uptime_s (68 years): a signed 32-bit integer."""
MAX_STORAGE_FREE_MB: Final = 2**31 - 1
"""Largest storage_free_mb (2 PiB): a signed 32-bit integer."""
MAX_CLOCK_OFFSET_MS: Final = MAX_TIMESTAMP_MS
"""clock_offset_ms lies within ±this: a clock anywhere from 1970 to 2200."""
MIN_RSSI_DBM: Final = -150
MAX_RSSI_DBM: Final = 0
"""link.rssi_dbm lies in MIN_RSSI_DBM..MAX_RSSI_DBM."""
MIN_TEMPERATURE_C: Final = -100
MAX_TEMPERATURE_C: Final = 200
"""temperature_c is a finite number in MIN_TEMPERATURE_C..MAX_TEMPERATURE_C."""
MAX_PERCENT: Final = 100
"""volume and battery_pct are integers in 0..MAX_PERCENT."""
MAX_DURATION_MS: Final = 86_400_000
"""Longest content item, ms (24 h)."""
MAX_PROTOCOL_REPORTED: Final = 1_000
"""Largest protocol version a status may report."""
SEEN_IDS: Final = 4096
"""A device remembers at least this many recent command ids to drop redelivered commands."""

# -- live audio (v1.2, §18) ------------------------------------------------------------------------
LIVE_MAGIC: Final = b"PAL1"
LIVE_HEADER_SIZE: Final = 17
"""Live frame header: magic (4) + seq u32 (4) + capture_ts u64 ms (8) + packet count u8 (1)."""
LIVE_SIGNATURE_SIZE: Final = 64
"""Every live frame ends with an Ed25519 signature by the stream's key."""
MAX_LIVE_PACKET: Final = 1275
"""Largest Opus packet (RFC 6716 §3.4)."""
MAX_LIVE_PACKETS: Final = 50
"""Most Opus packets in one live frame."""
MAX_LIVE_FRAME: Final = 8192
"""Largest live frame payload, bytes, signature included."""
LIVE_PACKET_MS: Final = (20, 40, 60)
"""Opus packet durations a live stream may use, ms."""
MAX_LIVE_FRAME_MS: Final = 1000
"""Longest live frame (its packets together), ms; frame_ms is a multiple of packet_ms."""
MAX_LIVE_FRAME_RATE: Final = 50
"""Most live frames a second a cluster must accept on one stream (one per 20 ms packet)."""
MIN_LIVE_DELAY_MS: Final = 200
MAX_LIVE_DELAY_MS: Final = 10_000
"""delay_ms (capture time to play-out) lies in MIN_LIVE_DELAY_MS..MAX_LIVE_DELAY_MS."""
MIN_LIVE_STALL_MS: Final = 1_000
MAX_LIVE_STALL_MS: Final = 120_000
"""stall_ms (no frame for this long ends the stream on a cluster) lies in this range."""
LIVE_ANNOUNCE_MS: Final = 10_000
"""The controller repeats live_start at least this often while a stream runs (late joiners)."""
