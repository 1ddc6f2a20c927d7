"""The replay window: the last SEEN_IDS command ids, kept on disk so a reboot does not forget them."""

from __future__ import annotations

import logging
from collections import OrderedDict
from pathlib import Path

from speakerctl.files import write_atomic
from speakerctl.protocol.limits import SEEN_IDS

log = logging.getLogger(__name__)


class SeenIds:
    """Command ids already acted on, oldest forgotten first; appended to a file as they arrive.

    A power cut between acting on a command and the broker's redelivery of it must not make the
    cluster play it twice, so the window survives restarts. The file is rewritten compactly once
    it holds twice the window.
    """

    def __init__(self, path: Path | None, size: int = SEEN_IDS) -> None:
        self._path = path
        self._size = size
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._lines = 0
        if path is not None:
            self._load(path)

    def _load(self, path: Path) -> None:
        try:
            text = path.read_text(encoding="ascii", errors="replace")
        except FileNotFoundError:
            return
        except OSError as exc:
            log.warning("cannot read the replay window %s: %s", path, exc)
            return
        for line in text.splitlines():
            self._remember(line.strip())
            self._lines += 1

    def __contains__(self, msg_id: str) -> bool:
        return msg_id in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, msg_id: str) -> None:
        """Remember an id, on disk too (best effort: a full disk must not stop the cluster)."""
        self._remember(msg_id)
        if self._path is None:
            return
        try:
            if self._lines >= 2 * self._size:
                self._compact(self._path)
            else:
                with self._path.open("a", encoding="ascii") as file:
                    file.write(msg_id + "\n")
                self._lines += 1
        except OSError as exc:
            log.warning("cannot persist the replay window %s: %s", self._path, exc)

    def _remember(self, msg_id: str) -> None:
        if msg_id:
            self._ids[msg_id] = None
            self._ids.move_to_end(msg_id)
            while len(self._ids) > self._size:
                self._ids.popitem(last=False)

    def _compact(self, path: Path) -> None:
        write_atomic(path, "".join(f"{i}\n" for i in self._ids))
        self._lines = len(self._ids)
