"""Field conditions for a simulated fleet: clusters on battery, amplifier faults, old firmware.

Every share defaults to 0, so a fleet is all-healthy and deterministic unless a test asks for trouble.
Each cluster draws from its own generator (seeded by the fleet seed and its id), so turning a
condition on never changes what other clusters do.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from simulator.hardware import SimAmplifier, SimTelemetry

CURRENT_FIRMWARE = "speakerctl-agent 0.1.0"


@dataclass(frozen=True, slots=True)
class FleetConditions:
    """What share of the fleet (0..1) is in which condition."""

    battery_share: float = 0.0
    """Clusters that lost mains and run on a battery draining from 30-95 %."""
    amplifier_fault_share: float = 0.0
    """Clusters whose amplifier or horn line reports a fault."""
    old_firmware_share: float = 0.0
    old_firmware: str = "speakerctl-agent 0.0.9"

    def apply(self, device_id: str, seed: int, telemetry: SimTelemetry, amplifier: SimAmplifier) -> str:
        """Put one cluster's hardware in its conditions; the firmware it reports."""
        rng = random.Random(f"{seed}:{device_id}")
        if rng.random() < self.battery_share:
            telemetry.source, telemetry.battery_pct = "battery", rng.randint(30, 95)
        if rng.random() < self.amplifier_fault_share:
            amplifier.state = "fault"
        return self.old_firmware if rng.random() < self.old_firmware_share else CURRENT_FIRMWARE
