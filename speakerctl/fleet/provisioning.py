"""Provisioning records from the inventory: what each cluster is told about itself, nothing more."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from speakerctl.files import PRIVATE, write_atomic
from speakerctl.fleet.profiles import HardwareProfile, load_profiles
from speakerctl.fleet.records import DeviceSpec, Inventory
from speakerctl.protocol.provisioning import (
    BUNDLE_FILE,
    CA_FILE,
    PASSWORD_FILE,
    TRUSTED_KEYS_FILE,
    Bundle,
    Provisioning,
    provisioning_to_wire,
)


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


def write_bundle(
    directory: Path, record: Provisioning, brokers: Sequence[str], secret: str, trusted: str, ca: bytes | None
) -> Bundle:
    """Write one cluster's bundle into `directory`: bundle.json, its password (0600), keys and CA."""
    bundle = Bundle(
        cluster=record,
        brokers=tuple(brokers),
        username=record.device_id,
        password_file=PASSWORD_FILE,
        trusted_keys_file=TRUSTED_KEYS_FILE,
        ca_file=CA_FILE if ca is not None else None,
    )
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    write_atomic(directory / PASSWORD_FILE, secret + "\n", mode=PRIVATE)
    write_atomic(directory / TRUSTED_KEYS_FILE, trusted)
    if ca is not None:
        write_atomic(directory / CA_FILE, ca)
    text = json.dumps(bundle.to_wire(), ensure_ascii=False, indent=1)
    write_atomic(directory / BUNDLE_FILE, text + "\n")
    return bundle
