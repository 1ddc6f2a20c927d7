"""A small inventory for the accounts and approval tests: a province and three communes, two clusters each."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from speakerctl.app.access import Actor, Role
from speakerctl.app.context import AppContext
from speakerctl.clock import FixedClock
from speakerctl.config import Settings

NOW = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)
PROVINCE, COMMUNE, OTHER, THIRD = "p", "c1", "c2", "c3"
MODEL = "ipc-4g-30w"


def inventory(path: Path) -> Path:
    """Write the inventory file and return its path."""
    zones = [{"id": PROVINCE, "name": "Tỉnh thử", "kind": "province", "parent": None}]
    devices = []
    for n, commune in enumerate((COMMUNE, OTHER, THIRD), 1):
        zones.append({"id": commune, "name": f"Xã {n}", "kind": "commune", "parent": PROVINCE})
        for k in (1, 2):
            devices.append(
                {
                    "id": f"{commune}-{k:02d}",
                    "name": f"Cụm {k}",
                    "zone": commune,
                    "model": MODEL,
                    "lat": 10.0 + n / 100,
                    "lon": 105.7 + k / 100,
                    "network": "4g",
                }
            )
    data = {
        "format": 1,
        "name": "Tỉnh thử",
        "timezone": "Asia/Ho_Chi_Minh",
        "zones": zones,
        "devices": devices,
    }
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def context(tmp_path: Path, db_url: str = "", **settings: object) -> AppContext:
    """An application context on the small fleet, at NOW on a fixed clock."""
    values = {
        "data_dir": tmp_path / "data",
        "database_url": db_url,
        "inventory": str(inventory(tmp_path / "fleet.json")),
        **settings,
    }
    return AppContext(Settings(**values), FixedClock(NOW))  # type: ignore[arg-type]


def user(role: Role, zone: str | None, name: str = "") -> Actor:
    """An actor with this role and zone."""
    return Actor(name or f"{role.value}-{zone or 'all'}", role, zone)
