"""The device's on-disk content cache: chunks stream into a part file and are verified incrementally."""

from __future__ import annotations

import hashlib
import os
from collections import OrderedDict
from pathlib import Path

from speakerctl.errors import ContentError
from speakerctl.files import replace_with
from speakerctl.protocol import ContentRef
from speakerctl.protocol.chunks import Chunk


class Download:
    """One content item arriving chunk by chunk; nothing but a bitmap stays in memory."""

    def __init__(self, ref: ContentRef, part: Path) -> None:
        self.ref = ref
        self.part = part
        self._have = bytearray(ref.chunks)
        self._missing = ref.chunks
        with part.open("wb") as fh:
            fh.truncate(ref.size)

    @property
    def missing(self) -> list[int]:
        """Indices not yet received."""
        return [i for i, got in enumerate(self._have) if not got]

    @property
    def complete(self) -> bool:
        """Whether every chunk has arrived."""
        return self._missing == 0

    def write(self, chunk: Chunk) -> bool:
        """Store a verified chunk at its offset; False if it was a duplicate."""
        if chunk.total != self.ref.chunks:
            raise ContentError(f"chunk says {chunk.total} chunks, content has {self.ref.chunks}")
        if self._have[chunk.index]:
            return False
        offset = chunk.index * self.ref.chunk_size
        expected = min(self.ref.chunk_size, self.ref.size - offset)
        if len(chunk.data) != expected:
            raise ContentError(f"chunk {chunk.index} has {len(chunk.data)} bytes, expected {expected}")
        fd = os.open(self.part, os.O_WRONLY)
        try:
            os.pwrite(fd, chunk.data, offset)
        finally:
            os.close(fd)
        self._have[chunk.index] = 1
        self._missing -= 1
        return True


class ContentCache:
    """Verified content by sha256, least recently used evicted past `max_bytes`."""

    def __init__(self, root: Path, max_bytes: int = 512 * 1024 * 1024) -> None:
        self.root = root
        self.max_bytes = max_bytes
        root.mkdir(parents=True, exist_ok=True)
        self._items: OrderedDict[str, int] = OrderedDict()
        for path in sorted(root.glob("*.bin"), key=lambda p: p.stat().st_mtime):
            self._items[path.stem] = path.stat().st_size
        for stale in root.glob("*.part"):
            stale.unlink()

    def has(self, sha256: str) -> bool:
        """Whether the item is cached (and marks it recently used)."""
        if sha256 in self._items:
            self._items.move_to_end(sha256)
            return True
        return False

    def path(self, sha256: str) -> Path:
        """Where a cached item lives."""
        return self.root / f"{sha256}.bin"

    @property
    def hashes(self) -> list[str]:
        """Cached items, most recently used first."""
        return list(reversed(self._items))

    def free_mb(self) -> int:
        """Room left in the cache, in MiB."""
        return max(0, self.max_bytes - sum(self._items.values())) // (1024 * 1024)

    def begin(self, ref: ContentRef) -> Download:
        """Start receiving an item, making room for it first."""
        self._make_room(ref.size)
        return Download(ref, self.root / f"{ref.sha256}.part")

    def finish(self, download: Download) -> Path:
        """Verify a complete download's hash and move it into the cache."""
        digest = hashlib.sha256()
        with download.part.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 16), b""):
                digest.update(block)
        if digest.hexdigest() != download.ref.sha256:
            download.part.unlink(missing_ok=True)
            raise ContentError(f"content {download.ref.sha256[:12]} fails its sha256 check")
        final = self.path(download.ref.sha256)
        replace_with(download.part, final)
        self._items[download.ref.sha256] = download.ref.size
        return final

    def abandon(self, download: Download) -> None:
        """Drop a download that will not complete."""
        download.part.unlink(missing_ok=True)

    def _make_room(self, size: int) -> None:
        if size > self.max_bytes:
            raise ContentError(f"content of {size} bytes exceeds the cache of {self.max_bytes}")
        while self._items and sum(self._items.values()) + size > self.max_bytes:
            sha, _ = self._items.popitem(last=False)
            self.path(sha).unlink(missing_ok=True)
