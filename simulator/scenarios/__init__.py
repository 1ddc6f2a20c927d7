"""Fault scenarios described in TOML files next to this module; `load_scenarios()` reads them.

name = "chunk-loss-5%"        # shown in reports
clusters = 279                # simulated clusters (the Sóc Trăng inventory, cut or padded)
clock_skew_ms = 0             # cluster clocks spread over ±this
offline = 0                   # clusters powered off when the broadcast starts...
return_after_s = 3.0          # ...and back this long after it started
power_cut_playing = 0         # clusters that lose power while playing, back 1 s later
broker_restart_at_s = 0       # restart the broker this long into the broadcast (0: never)
bulletin_kb = 256             # size of each encoding of the bulletin
[faults]                      # simulator.faults.FaultProfile, on every cluster's downlink
chunk_loss = 0.05
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any

from simulator.faults import FaultProfile


@dataclass(frozen=True, slots=True)
class Scenario:
    """One fault scenario."""

    name: str
    clusters: int = 279
    faults: FaultProfile = field(default_factory=FaultProfile)
    clock_skew_ms: int = 0
    offline: int = 0
    return_after_s: float = 3.0
    power_cut_playing: int = 0
    broker_restart_at_s: float = 0.0
    bulletin_kb: int = 256

    def __post_init__(self) -> None:
        if not 1 <= self.clusters <= 10_000:
            raise ValueError(f"{self.name}: clusters must be 1..10000")
        if self.offline + self.power_cut_playing > self.clusters:
            raise ValueError(f"{self.name}: more clusters offline than in the fleet")

    @classmethod
    def from_toml(cls, text: str, source: str = "scenario") -> Scenario:
        """Parse and validate one scenario file."""
        data: dict[str, Any] = tomllib.loads(text)
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"{source}: unknown keys {sorted(unknown)}; known: {sorted(known)}")
        faults = FaultProfile(**data.pop("faults", {}))
        return cls(faults=faults, **data)


def load_scenarios(directory: Path | None = None) -> list[Scenario]:
    """Every `*.toml` scenario of a directory (default: the packaged ones), by file name."""
    if directory is not None:
        files = [(p.name, p.read_text(encoding="utf-8")) for p in sorted(directory.glob("*.toml"))]
    else:
        root = resources.files(__name__)
        entries = sorted((e for e in root.iterdir() if e.name.endswith(".toml")), key=lambda e: e.name)
        files = [(e.name, e.read_text(encoding="utf-8")) for e in entries]
    return [Scenario.from_toml(text, name) for name, text in files]
