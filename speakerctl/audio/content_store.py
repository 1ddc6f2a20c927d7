"""Encoded audio on disk, addressed by the sha256 of its bytes: `root/ab/abcdef….<ext>`.

Writes go through `speakerctl.files.write_atomic` and are deduplicated: content already present
is never rewritten. Temp files start with a dot, so a crash leaves nothing that `path()` could
mistake for content.

`lock()` serialises, across processes, the steps that must agree with the database: storing
content and recording the bulletin that uses it, or forgetting a bulletin and deleting the
content nothing else uses.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from speakerctl.audio.formats import EncodedAudio
from speakerctl.errors import AudioError, NotFound, StoreError
from speakerctl.files import PRIVATE, private_dir, write_atomic

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
FILE_MODE = PRIVATE
LOCK_NAME = ".lock"


class ContentStore:
    """Content-addressed files of encoded audio under one root directory."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def put(self, audio: EncodedAudio) -> Path:
        """Store audio after checking its hash; the path of the (possibly existing) file."""
        if hashlib.sha256(audio.data).hexdigest() != audio.sha256:
            raise AudioError(f"{audio.source_name}: content does not match sha256 {audio.sha256}")
        final = self._shard(audio.sha256) / f"{audio.sha256}.{audio.extension}"
        if not final.exists():
            self._write_atomic(final, audio.data)
        return final

    def path(self, sha256: str) -> Path:
        """The file holding this content; NotFound if the store has none."""
        found = self._find(sha256)
        if found is None:
            raise NotFound(f"no content {sha256[:12]} in {self.root}")
        return found

    def read(self, sha256: str) -> bytes:
        """The bytes of this content; NotFound if the store has none."""
        path = self.path(sha256)
        try:
            return path.read_bytes()
        except OSError as exc:
            raise StoreError(f"cannot read {path}: {exc.strerror or exc}") from exc

    def has(self, sha256: str) -> bool:
        """Whether the store holds this content."""
        return self._find(sha256) is not None

    def remove(self, sha256: str) -> None:
        """Delete this content; NotFound if the store has none."""
        path = self.path(sha256)
        try:
            path.unlink()
        except FileNotFoundError as exc:
            raise NotFound(f"no content {sha256[:12]} in {self.root}") from exc
        except OSError as exc:
            raise StoreError(f"cannot remove {path}: {exc.strerror or exc}") from exc

    def discard(self, hashes: Iterable[str]) -> None:
        """Delete whichever of this content is present."""
        for sha256 in hashes:
            with contextlib.suppress(NotFound):
                self.remove(sha256)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the store's advisory lock (blocking until other processes release it)."""
        try:
            private_dir(self.root)
            fd = os.open(self.root / LOCK_NAME, os.O_RDWR | os.O_CREAT, FILE_MODE)
        except OSError as exc:
            raise StoreError(f"cannot lock {self.root}: {exc.strerror or exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _shard(self, sha256: str) -> Path:
        """The directory for a hash: its first two hex digits."""
        return self.root / sha256[:2]

    def _find(self, sha256: str) -> Path | None:
        """The stored file for a hash, whatever its extension; None also for a malformed hash."""
        if not _SHA256.match(sha256):
            return None
        return next((p for p in self._shard(sha256).glob(f"{sha256}.*") if p.is_file()), None)

    def _write_atomic(self, final: Path, data: bytes) -> None:
        """Write data to final (creating its shard directory) without ever exposing a partial file."""
        try:
            private_dir(final.parent)
        except OSError as exc:
            raise StoreError(f"cannot write to {final.parent}: {exc.strerror or exc}") from exc
        try:
            write_atomic(final, data, mode=FILE_MODE)
        except OSError as exc:
            raise StoreError(f"cannot write {final}: {exc.strerror or exc}") from exc
