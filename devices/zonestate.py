"""The zone chain a cluster listens on, as the last `configure` set it: kept on disk across reboots.

Provisioning gives a cluster its first chain; a signed `configure` (protocol v1.2) replaces it, for
instance after the 2025 administrative remap. The file holds the chain, root first; without one the
provisioned chain applies. A file that cannot be read is logged and ignored, never fatal: the cluster
then listens where it was provisioned to, and the controller can send `configure` again.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from speakerctl.errors import ProtocolError
from speakerctl.files import write_atomic
from speakerctl.protocol import Configure

log = logging.getLogger(__name__)
ZONES_FILE = "zones.json"


def read_zones(directory: Path) -> tuple[str, ...] | None:
    """The chain the last `configure` set, or None (none yet, or an unreadable file)."""
    path = directory / ZONES_FILE
    try:
        return Configure.from_wire(json.loads(path.read_text(encoding="utf-8"))).zones
    except FileNotFoundError:
        return None
    except (OSError, ValueError, ProtocolError, AttributeError) as exc:
        log.warning("ignoring the zone chain in %s: %s", path, exc)
        return None


def write_zones(directory: Path, zones: tuple[str, ...]) -> None:
    """Keep `zones` (root first) as the chain to listen on after a restart."""
    directory.mkdir(parents=True, exist_ok=True)
    write_atomic(directory / ZONES_FILE, json.dumps(Configure(zones).to_wire()) + "\n")
