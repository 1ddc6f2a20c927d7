"""What a cluster must remember across reboots: the ids it acted on and its latest event per broadcast.

Both are a `Window`: a bounded map, oldest forgotten first, appended to a file as it changes and
rewritten compactly (atomically) once the file holds twice the window. On load, a later line for a
key wins, and a line its owner finds invalid (torn by a power cut mid-append) is skipped.
"""

from __future__ import annotations

import logging
import os
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

from speakerctl.errors import ProtocolError
from speakerctl.files import PRIVATE, write_atomic
from speakerctl.protocol import DeliveryEvent, codec
from speakerctl.protocol.lifecycle import DEVICE_FINAL
from speakerctl.protocol.limits import SEEN_IDS

log = logging.getLogger(__name__)
LATEST_KEPT = 64
"""Broadcasts whose latest delivery event a cluster remembers, to repeat it to a restarted controller."""


class Window:
    """A bounded map of ASCII keys to one-line text values, kept in memory and in an append-only file.

    The file is not synced on every append (hundreds of clusters share one host in the simulator);
    a killed process or a software reboot keeps what the OS holds, and compaction is atomic.
    """

    def __init__(self, path: Path | None, size: int, what: str, valid: Callable[[str], bool] = bool) -> None:
        self._path = path
        self._size = size
        self._what = what
        self._valid = valid
        self._items: OrderedDict[str, str] = OrderedDict()
        self._lines = 0
        if path is not None:
            self._load(path)

    def _load(self, path: Path) -> None:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return
        except OSError as exc:
            log.warning("cannot read the %s %s: %s", self._what, path, exc)
            return
        for line in text.split("\n"):  # not splitlines(): JSON may hold U+2028 unescaped
            key, _, value = line.partition("\t")
            if self._valid(line):
                self._remember(key, value)
            self._lines += 1

    def __contains__(self, key: str) -> bool:
        return key in self._items

    def __len__(self) -> int:
        return len(self._items)

    def values(self) -> list[str]:
        """Every value held, oldest first."""
        return list(self._items.values())

    def get(self, key: str) -> str | None:
        """The value last put for `key`, if it is still in the window."""
        return self._items.get(key)

    def put(self, key: str, value: str = "") -> None:
        """Remember a key (and value), on disk too (best effort: a full disk must not stop the cluster)."""
        self._remember(key, value)
        if self._path is None:
            return
        try:
            if self._lines >= 2 * self._size:
                self._compact(self._path)
            else:
                _append(self._path, _line(key, value))
                self._lines += 1
        except OSError as exc:
            log.warning("cannot persist the %s %s: %s", self._what, self._path, exc)

    def _remember(self, key: str, value: str) -> None:
        if key:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)

    def _compact(self, path: Path) -> None:
        write_atomic(path, "".join(_line(k, v) for k, v in self._items.items()))
        self._lines = len(self._items)


def _append(path: Path, line: str) -> None:
    """Append one line with one write (O_APPEND): no buffered file object per event, no torn interleaving."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, PRIVATE)
    try:
        os.write(fd, line.encode("utf-8"))
    finally:
        os.close(fd)


def _line(key: str, value: str) -> str:
    return f"{key}\t{value}\n" if value else f"{key}\n"


class SeenIds:
    """Command ids already acted on (the replay window, §10 of the protocol).

    A power cut between acting on a command and the broker's redelivery of it must not make the
    cluster play it twice, so the window survives restarts.
    """

    def __init__(self, path: Path | None, size: int = SEEN_IDS) -> None:
        self._window = Window(path, size, "replay window")

    def __contains__(self, msg_id: str) -> bool:
        return msg_id in self._window

    def __len__(self) -> int:
        return len(self._window)

    def add(self, msg_id: str) -> None:
        """Remember an id, on disk too."""
        self._window.put(msg_id)


class LatestEvents:
    """The latest delivery event (encoded) of each of the last `size` broadcasts.

    A controller that restarted re-sends its play to learn what it missed; a cluster rebooted since
    must still answer it, or the controller records as unreached a cluster that played.
    """

    def __init__(self, path: Path | None, size: int = LATEST_KEPT) -> None:
        self._window = Window(path, size, "latest events", _whole_event)

    def get(self, broadcast_id: str) -> bytes | None:
        """The encoded event to repeat for a broadcast, if remembered."""
        found = self._window.get(broadcast_id)
        return found.encode("utf-8") if found else None

    def put(self, broadcast_id: str, payload: bytes) -> None:
        """Remember the encoded event just sent for a broadcast (one line of JSON)."""
        self._window.put(broadcast_id, payload.decode("utf-8"))

    def unfinished(self) -> list[DeliveryEvent]:
        """The remembered latest events that are not final: broadcasts still under way here."""
        events = [codec.decode_event(v.encode("utf-8")) for v in self._window.values()]
        return [e for e in events if isinstance(e, DeliveryEvent) and e.state not in DEVICE_FINAL]


def _whole_event(line: str) -> bool:
    """Whether a line of the latest-events file is a key and an event that decodes."""
    key, _, value = line.partition("\t")
    try:
        return bool(key) and codec.decode_event(value.encode("utf-8")) is not None
    except ProtocolError:
        return False
