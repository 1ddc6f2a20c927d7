"""A cluster's identity: the provisioning record the controller wrote for it, or its whole bundle."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

from devices.trust import read_trusted_keys
from speakerctl.broker.address import BrokerAddress
from speakerctl.errors import ConfigError, ProtocolError
from speakerctl.protocol import codec
from speakerctl.protocol.provisioning import BUNDLE_FILE, Bundle, Provisioning, provisioning_from_wire
from speakerctl.protocol.signing import TrustedKeys


def read_provisioning(path: Path) -> tuple[Provisioning, ...]:
    """The records of a provisioning file (one per cluster it provisions), or ConfigError."""
    try:
        return provisioning_from_wire(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, ProtocolError) as exc:
        raise ConfigError(f"cannot read provisioning records from {path}: {exc}") from exc


@dataclass(frozen=True, slots=True)
class Installed:
    """A cluster as its bundle installs it: who it is, the brokers to try in order, the keys it trusts."""

    identity: Provisioning
    brokers: tuple[BrokerAddress, ...]
    trusted_keys: TrustedKeys


def read_bundle(directory: Path) -> Installed:
    """The bundle in `directory` (its bundle.json and the files it names), or ConfigError."""
    try:
        bundle = codec.decode_bundle((directory / BUNDLE_FILE).read_bytes())
        password = _secret(directory, bundle)
    except (OSError, UnicodeDecodeError, ProtocolError) as exc:
        raise ConfigError(f"cannot read the provisioning bundle in {directory}: {exc}") from exc
    ca = str(directory / bundle.ca_file) if bundle.ca_file else None
    brokers = tuple(
        replace(BrokerAddress.parse(url), username=bundle.username, password=password, ca_file=ca)
        for url in bundle.brokers
    )
    keys = read_trusted_keys(directory / bundle.trusted_keys_file)
    return Installed(bundle.cluster, brokers, keys)


def _secret(directory: Path, bundle: Bundle) -> str | None:
    if bundle.password_file is None:
        return None
    return (directory / bundle.password_file).read_text(encoding="utf-8").strip()


def read_bundles(root: Path) -> tuple[Installed, ...]:
    """Every bundle under `root` (one directory per cluster, as `devices provision --bundle` writes)."""
    found = sorted(p.parent for p in root.glob(f"*/{BUNDLE_FILE}"))
    if not found:
        raise ConfigError(
            f"no provisioning bundle in {root}", hint="speakerctl devices provision --bundle DIR"
        )
    return tuple(read_bundle(d) for d in found)
