"""What a cluster is told when it is installed: who it is, where it hangs, what it plays, how it connects.

The controller writes these records from its inventory; a cluster (or the simulator) reads its own and
never needs the inventory. Pure data: the file is a JSON object `{"format": 1, "clusters": [record...]}`.
A provisioning bundle (docs/protocol.md §16) wraps one record with what the cluster needs to connect:
`bundle.json` (a `Bundle`) next to its password, trusted keys and CA files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

from speakerctl.errors import ProtocolError
from speakerctl.protocol import fields as f
from speakerctl.protocol.limits import PROTOCOL_VERSION
from speakerctl.protocol.topics import check_id

FORMAT: Final = 1
NETWORKS: Final = ("4g", "3g", "wired")
BUNDLE_FORMAT: Final = 1
BUNDLE_FILE: Final = "bundle.json"
PASSWORD_FILE: Final = "password"
TRUSTED_KEYS_FILE: Final = "trusted.pub"
CA_FILE: Final = "ca.pem"
BROKER_SCHEMES: Final = ("mqtt", "mqtts")
_FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@dataclass(frozen=True, slots=True)
class Provisioning:
    """One cluster's identity: its id, its zones from the root down, its model, codecs and link."""

    device_id: str
    zones: tuple[str, ...]
    model: str
    codecs: tuple[str, ...]
    network: str

    def __post_init__(self) -> None:
        check_id(self.device_id, "device id")
        if not self.zones:
            raise ProtocolError("zones must name at least the cluster's own zone")
        for zone in self.zones:
            check_id(zone, "zone id")
        check_id(self.model, "model")
        if not self.codecs:
            raise ProtocolError("codecs must name at least one codec")
        for codec in self.codecs:
            f.check_token(codec, "codec")
        f.choice(self.network, NETWORKS, "network")

    @property
    def zone(self) -> str:
        """The zone the cluster hangs on (the last of the chain)."""
        return self.zones[-1]

    def to_wire(self) -> dict[str, Any]:
        """The record as JSON-ready data."""
        return {
            "device_id": self.device_id,
            "zones": list(self.zones),
            "model": self.model,
            "codecs": list(self.codecs),
            "network": self.network,
        }

    @classmethod
    def from_wire(cls, d: object) -> Provisioning:
        """A record from decoded JSON, or ProtocolError."""
        w = f.obj(d, "provisioning record")
        return cls(
            device_id=f.req(w, "device_id", str),
            zones=tuple(f.str_list(w.get("zones"), "zones")),
            model=f.req(w, "model", str),
            codecs=tuple(f.str_list(w.get("codecs"), "codecs")),
            network=f.req(w, "network", str),
        )


def provisioning_to_wire(records: tuple[Provisioning, ...] | list[Provisioning]) -> dict[str, Any]:
    """A provisioning file's content."""
    return {"format": FORMAT, "clusters": [r.to_wire() for r in records]}


def provisioning_from_wire(d: object) -> tuple[Provisioning, ...]:
    """The records of a decoded provisioning file, or ProtocolError."""
    w = f.obj(d, "provisioning file")
    if w.get("format") != FORMAT:
        raise ProtocolError(f"provisioning format {w.get('format')!r} is not supported (expected {FORMAT})")
    clusters = w.get("clusters")
    if not isinstance(clusters, list):
        raise ProtocolError("'clusters' must be an array")
    return tuple(Provisioning.from_wire(c) for c in clusters)


@dataclass(frozen=True, slots=True)
class Bundle:
    """`bundle.json`: one cluster's record, its brokers in order of preference, its account and files.

    File names are relative to the bundle's directory; `password_file` and `ca_file` are None when the
    broker takes no login or the system CAs verify it.
    """

    cluster: Provisioning
    brokers: tuple[str, ...]
    username: str | None = None
    password_file: str | None = None
    trusted_keys_file: str = TRUSTED_KEYS_FILE
    ca_file: str | None = None
    protocol: int = PROTOCOL_VERSION

    def __post_init__(self) -> None:
        if self.protocol != PROTOCOL_VERSION:
            raise ProtocolError(f"bundle speaks protocol {self.protocol}, this side {PROTOCOL_VERSION}")
        if not self.brokers:
            raise ProtocolError("brokers must name at least one broker URL")
        for url in self.brokers:
            check_broker_url(url)
        if (self.username is None) != (self.password_file is None):
            raise ProtocolError("username and password_file go together")
        if self.username is not None:
            check_id(self.username, "username")
        for name in (self.password_file, self.trusted_keys_file, self.ca_file):
            if name is not None and not _FILE_NAME.fullmatch(name):
                raise ProtocolError(f"{name!r} is not a plain file name of the bundle")

    def to_wire(self) -> dict[str, Any]:
        """`bundle.json` as JSON-ready data."""
        return {
            "format": BUNDLE_FORMAT,
            "protocol": self.protocol,
            "cluster": self.cluster.to_wire(),
            "brokers": list(self.brokers),
            "username": self.username,
            "password_file": self.password_file,
            "trusted_keys_file": self.trusted_keys_file,
            "ca_file": self.ca_file,
        }

    @classmethod
    def from_wire(cls, d: object) -> Bundle:
        """A bundle from decoded JSON, or ProtocolError."""
        w = f.obj(d, "bundle")
        if w.get("format") != BUNDLE_FORMAT or type(w.get("format")) is not int:
            raise ProtocolError(
                f"bundle format {w.get('format')!r} is not supported (expected {BUNDLE_FORMAT})"
            )
        return cls(
            cluster=Provisioning.from_wire(w.get("cluster")),
            brokers=tuple(f.str_list(w.get("brokers"), "brokers")),
            username=f.opt(w, "username", str),
            password_file=f.opt(w, "password_file", str),
            trusted_keys_file=f.req(w, "trusted_keys_file", str),
            ca_file=f.opt(w, "ca_file", str),
            protocol=f.req(w, "protocol", int),
        )


def check_broker_url(url: str) -> str:
    """`url` if it is `mqtt[s]://host[:port]` without credentials (they live in the bundle's files)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ProtocolError(f"broker URL {url!r} is invalid: {exc}") from exc
    if parts.scheme not in BROKER_SCHEMES or not parts.hostname:
        raise ProtocolError(f"broker URL {url!r} must be mqtt://host[:port] or mqtts://host[:port]")
    if parts.username is not None or parts.password is not None:
        raise ProtocolError(f"broker URL {url!r} must not hold credentials")
    if parts.path not in ("", "/") or parts.query or parts.fragment or port == 0:
        raise ProtocolError(f"broker URL {url!r} must name only a scheme, a host and a port")
    return url
