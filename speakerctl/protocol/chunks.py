"""Binary chunk frames: content split into fixed-size pieces, each carrying its index and checksum."""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from speakerctl.errors import ProtocolError
from speakerctl.protocol.limits import (
    CHUNK_HEADER_SIZE,
    CHUNK_MAGIC,
    CHUNK_SIZE,
    MAX_CHUNK_PAYLOAD,
    MAX_CHUNKS,
)

_HEADER = struct.Struct(">4sII32s")
assert _HEADER.size == CHUNK_HEADER_SIZE


@dataclass(frozen=True, slots=True)
class Chunk:
    """One verified piece of a content item."""

    index: int
    total: int
    data: bytes


def pack(index: int, total: int, data: bytes) -> bytes:
    """The wire frame of one chunk."""
    if not 0 <= index < total <= MAX_CHUNKS or not 0 < len(data) <= CHUNK_SIZE:
        raise ProtocolError(f"bad chunk {index}/{total} of {len(data)} bytes")
    return _HEADER.pack(CHUNK_MAGIC, index, total, hashlib.sha256(data).digest()) + data


def unpack(frame: bytes) -> Chunk:
    """Parse and verify a chunk frame, or raise ProtocolError."""
    if not CHUNK_HEADER_SIZE < len(frame) <= MAX_CHUNK_PAYLOAD:
        raise ProtocolError(f"chunk frame of {len(frame)} bytes is out of bounds")
    magic, index, total, digest = _HEADER.unpack_from(frame)
    if magic != CHUNK_MAGIC:
        raise ProtocolError("chunk frame has a wrong magic")
    if not index < total <= MAX_CHUNKS:
        raise ProtocolError(f"chunk index {index} out of range for {total} chunks")
    data = bytes(frame[CHUNK_HEADER_SIZE:])
    if hashlib.sha256(data).digest() != digest:
        raise ProtocolError(f"chunk {index} fails its checksum")
    return Chunk(index, total, data)


def chunk_count(size: int) -> int:
    """How many chunks a content item of `size` bytes travels in."""
    return -(-size // CHUNK_SIZE)


def split(content: bytes) -> Iterator[bytes]:
    """Every chunk frame of a content item, in order."""
    total = chunk_count(len(content))
    for i in range(total):
        yield pack(i, total, content[i * CHUNK_SIZE : (i + 1) * CHUNK_SIZE])


def frames(content: bytes, indices: Iterable[int]) -> Iterator[bytes]:
    """The chunk frames of just these indices (for repairs)."""
    total = chunk_count(len(content))
    for i in sorted(set(indices)):
        if 0 <= i < total:
            yield pack(i, total, content[i * CHUNK_SIZE : (i + 1) * CHUNK_SIZE])


def to_ranges(indices: Iterable[int]) -> list[tuple[int, int]]:
    """Compress sorted chunk indices into inclusive ranges."""
    ranges: list[tuple[int, int]] = []
    for i in sorted(set(indices)):
        if ranges and ranges[-1][1] == i - 1:
            ranges[-1] = (ranges[-1][0], i)
        else:
            ranges.append((i, i))
    return ranges


def from_ranges(ranges: Iterable[tuple[int, int]]) -> set[int]:
    """Expand inclusive ranges into chunk indices."""
    return {i for lo, hi in ranges for i in range(lo, hi + 1)}
