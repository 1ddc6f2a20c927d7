"""Ogg pages (RFC 3533) for Opus (RFC 7845): split ffmpeg's Ogg/Opus output into packets, and write them back.

Pure byte handling, no I/O: `OggReader` takes bytes as they come from a pipe and hands out whole
packets; `ogg_opus` wraps packets into a file ffmpeg can decode (tests decode what clusters played).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator

from speakerctl.errors import LiveSourceError

CAPTURE = b"OggS"
_PAGE = struct.Struct("<4sBBqIIIB")
OPUS_HEAD = b"OpusHead"
OPUS_TAGS = b"OpusTags"
MAX_PAGE = 65_307
"""Largest Ogg page: 27 header bytes + 255 lacing values + 255 × 255 data bytes."""


def _crc_table() -> list[int]:
    table = []
    for i in range(256):
        r = i << 24
        for _ in range(8):
            r = ((r << 1) ^ 0x04C11DB7) if r & 0x80000000 else r << 1
        table.append(r & 0xFFFFFFFF)
    return table


_CRC = _crc_table()


def crc32(data: bytes) -> int:
    """The Ogg CRC-32 (polynomial 0x04C11DB7, not reflected, initial 0)."""
    crc = 0
    for byte in data:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ _CRC[((crc >> 24) & 0xFF) ^ byte]
    return crc


class OggReader:
    """Incremental Ogg demuxer for one logical stream: feed bytes, take audio packets (headers skipped)."""

    def __init__(self) -> None:
        self._data = bytearray()
        self._partial = bytearray()
        self.pages = 0

    def feed(self, data: bytes) -> list[bytes]:
        """Every Opus audio packet completed by `data`."""
        self._data += data
        packets: list[bytes] = []
        while (page := self._next_page()) is not None:
            packets.extend(p for p in self._packets(*page) if not p.startswith((OPUS_HEAD, OPUS_TAGS)))
        return packets

    def _next_page(self) -> tuple[bytes, bytes] | None:
        data = self._data
        if len(data) < _PAGE.size:
            return None
        if data[:4] != CAPTURE:
            raise LiveSourceError("the encoder's output is not an Ogg stream")
        count = data[26]
        end = _PAGE.size + count
        if len(data) < end:
            return None
        lacing = bytes(data[_PAGE.size : end])
        total = end + sum(lacing)
        if len(data) < total:
            return None
        body = bytes(data[end:total])
        del data[:total]
        self.pages += 1
        return lacing, body

    def _packets(self, lacing: bytes, body: bytes) -> Iterator[bytes]:
        at = 0
        for size in lacing:
            self._partial += body[at : at + size]
            at += size
            if size < 255:
                yield bytes(self._partial)
                self._partial.clear()


def _page(body: bytes, lacing: bytes, granule: int, serial: int, seq: int, flags: int) -> bytes:
    head = _PAGE.pack(CAPTURE, 0, flags, granule, serial, seq, 0, len(lacing))
    page = head + lacing + body
    return page[:22] + struct.pack("<I", crc32(page)) + page[26:]


def _lacing(packet: bytes) -> bytes:
    return bytes([255] * (len(packet) // 255) + [len(packet) % 255])


def ogg_opus(packets: Iterable[bytes], samples_per_packet: int, channels: int = 1, serial: int = 1) -> bytes:
    """An Ogg/Opus file of the packets, one packet a page (48 kHz granule positions)."""
    head = OPUS_HEAD + struct.pack("<BBHIhB", 1, channels, 312, 48_000, 0, 0)
    tags = OPUS_TAGS + struct.pack("<I", 10) + b"speakerctl" + struct.pack("<I", 0)
    out = [_page(head, _lacing(head), 0, serial, 0, 2), _page(tags, _lacing(tags), 0, serial, 1, 0)]
    granule, seq = 312, 2
    for packet in packets:
        granule += samples_per_packet
        out.append(_page(packet, _lacing(packet), granule, serial, seq, 0))
        seq += 1
    if len(out) > 2:
        out[-1] = out[-1][:5] + bytes([4]) + out[-1][6:22] + b"\0\0\0\0" + out[-1][26:]
        out[-1] = out[-1][:22] + struct.pack("<I", crc32(out[-1])) + out[-1][26:]
    return b"".join(out)
