"""The one atomic file writer: a crash leaves the old file or the new one, never half of either.

Used by the content store, bulletin export, keys, broker credentials and config, and the cluster's
own state files. It raises OSError, which each caller translates into its own error at its edge,
except for a full disk: that is `NoSpace` wherever it happens (`check_space`).
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path

from speakerctl.errors import NoSpace

PUBLIC: int = 0o644
"""Mode of a file anyone on the machine may read (exported audio, the broker's config, public keys)."""
PRIVATE: int = 0o600
"""Mode of a file only its owner may read: the default (store, content, keys, secrets, ACL files)."""
PRIVATE_DIR: int = 0o700
"""Mode of a directory only its owner may enter (the data directory and what it holds)."""


def write_atomic(path: Path, data: bytes | str, *, mode: int = PRIVATE) -> None:
    """Write `data` (str as UTF-8) to `path` through a synced temp file beside it, then rename it in."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    try:
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        check_space(exc, path.parent)
        raise
    try:
        _write_synced(fd, payload, mode)
        os.replace(temp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        if isinstance(exc, OSError):
            check_space(exc, path.parent)
        raise
    _sync_dir(path.parent)


def check_space(exc: OSError, directory: Path) -> None:
    """Raise NoSpace if `exc` says the disk holding `directory` is full."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        raise no_space(directory) from exc


def no_space(directory: Path | None) -> NoSpace:
    """The error telling the operator which directory's disk to free (if known)."""
    if directory is None:
        return NoSpace("no space left on device", hint="free space on the disk speakerctl writes to")
    return NoSpace(f"no space left on device for {directory}", hint=f"free space in {directory}")


def display_name(path: Path | str) -> str:
    """A file name as text that can be stored and printed: bytes that are not UTF-8 become U+FFFD."""
    name = path.name if isinstance(path, Path) else path
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def private_dir(path: Path) -> Path:
    """Create `path` (and missing parents) for its owner alone; an existing directory is left as it is."""
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
    return path


def create_private(path: Path) -> None:
    """Create an empty file only its owner may read, unless it exists (SQLite then keeps its mode)."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE))


def _write_synced(fd: int, data: bytes, mode: int) -> None:
    """Write all of data to fd, set its mode, fsync and close it."""
    with os.fdopen(fd, "wb") as fh:
        os.fchmod(fh.fileno(), mode)
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _sync_dir(directory: Path) -> None:
    """Persist a rename by syncing its directory (best effort: not every filesystem allows it)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def replace_with(source: Path, path: Path) -> None:
    """Move a finished file (written and synced by the caller) over `path` and persist the rename."""
    os.replace(source, path)
    _sync_dir(path.parent)
