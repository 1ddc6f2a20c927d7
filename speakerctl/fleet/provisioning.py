"""Provisioning records from the inventory: what each cluster is told about itself, nothing more."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from speakerctl.files import write_atomic
from speakerctl.fleet.profiles import HardwareProfile, load_profiles
from speakerctl.fleet.records import DeviceSpec, Inventory
from speakerctl.protocol.provisioning import Provisioning, provisioning_to_wire


def provisioning_records(
    inventory: Inventory, profiles: Mapping[str, HardwareProfile] | None = None
) -> tuple[Provisioning, ...]:
    """One record per cluster of `inventory`, in file order."""
    known = load_profiles() if profiles is None else profiles
    return tuple(provisioning_record(inventory, d, known[d.model]) for d in inventory.devices)


def provisioning_record(inventory: Inventory, device: DeviceSpec, profile: HardwareProfile) -> Provisioning:
    """The record of one cluster: its zones from the root down, its model's codecs, its link."""
    return Provisioning(
        device_id=device.id,
        zones=tuple(inventory.tree.ancestors(device.zone)),
        model=device.model,
        codecs=profile.codecs,
        network=device.network.value,
    )


def write_provisioning(path: Path, records: Sequence[Provisioning]) -> None:
    """Write `records` as a provisioning file a cluster (or the simulator) reads."""
    text = json.dumps(provisioning_to_wire(list(records)), ensure_ascii=False, indent=1)
    write_atomic(path, text + "\n")
