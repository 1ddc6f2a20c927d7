"""A cluster's identity: the provisioning record the controller wrote for it, read from its file."""

from __future__ import annotations

import json
from pathlib import Path

from speakerctl.errors import ConfigError, ProtocolError
from speakerctl.protocol.provisioning import Provisioning, provisioning_from_wire


def read_provisioning(path: Path) -> tuple[Provisioning, ...]:
    """The records of a provisioning file (one per cluster it provisions), or ConfigError."""
    try:
        return provisioning_from_wire(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, ProtocolError) as exc:
        raise ConfigError(f"cannot read provisioning records from {path}: {exc}") from exc
