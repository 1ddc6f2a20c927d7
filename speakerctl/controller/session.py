"""Who the controller is on the broker: a client id stable per installation, one per process role.

`serve` holds a persistent session (`clean_session` false) under `<installation>-serve`, so the broker
queues the events published while it restarts or reconnects. A one-shot command connects under
`<installation>-cli-<pid>` with a clean session: two processes of one installation never share an id
(the broker would disconnect one for the other), and a finished command leaves no session behind.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from speakerctl.errors import ConfigError
from speakerctl.files import write_atomic

ID_FILE = "controller-id"
"""The file in the data directory that holds the installation's id, written once."""


@dataclass(frozen=True, slots=True)
class Session:
    """The client id a controller process connects with, and whether the broker keeps its session."""

    client_id: str
    persistent: bool


def installation_id(data_dir: Path) -> str:
    """The installation's id (`speakerctl-<random>`), created in the data directory on first use."""
    path = data_dir / ID_FILE
    try:
        if not path.exists():
            data_dir.mkdir(parents=True, exist_ok=True)
            write_atomic(path, f"speakerctl-{secrets.token_hex(6)}\n")
        return path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(
            f"cannot read or write the controller id in {path}: {exc}",
            hint="check that the data directory is writable",
        ) from exc


def serve_session(data_dir: Path, client_id: str = "", controller_id: str = "") -> Session:
    """The long-running controller's session: persistent, under its controller id (several controllers
    on one database: one each), else a configured client id, else the installation's."""
    return Session(controller_id or client_id or f"{installation_id(data_dir)}-serve", persistent=True)


def command_session(data_dir: Path, client_id: str = "", pid: int | None = None) -> Session:
    """A one-shot command's session: clean, under an id no other process of the installation uses."""
    base = client_id or installation_id(data_dir)
    return Session(f"{base}-cli-{os.getpid() if pid is None else pid}", persistent=False)
