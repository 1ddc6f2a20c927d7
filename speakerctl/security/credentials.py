"""Broker accounts of the clusters and the controller: secrets made once, only their hashes kept.

`provision` returns each new secret exactly once (the CLI prints it, the installer writes it into the
cluster); what stays on the controller is the Mosquitto PBKDF2-SHA512 hash, in a file only its owner
can read. The Mosquitto password file is rendered from these hashes, so no plaintext secret is ever
written on the controller's side.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from speakerctl.broker.mosquitto import hash_password
from speakerctl.errors import ConfigError
from speakerctl.files import PRIVATE, private_dir, write_atomic
from speakerctl.protocol import topics
from speakerctl.protocol.limits import TOPIC_ROOT

CREDENTIALS_NAME = "credentials.json"
CONTROLLER_USER = "speakerctl"
SECRET_BYTES = 24


@dataclass(frozen=True, slots=True)
class Issued:
    """A freshly made account: the only time its secret is visible."""

    username: str
    secret: str


class Credentials:
    """Account name -> password hash, in `<data dir>/credentials.json` (mode 0600)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.hashes: dict[str, str] = self._read(path)

    @classmethod
    def in_dir(cls, data_dir: Path) -> Credentials:
        """The credentials of a controller's data directory."""
        return cls(data_dir / CREDENTIALS_NAME)

    @staticmethod
    def _read(path: Path) -> dict[str, str]:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read {path}: {exc}") from exc
        accounts = data.get("accounts") if isinstance(data, dict) else None
        if not isinstance(accounts, dict) or not all(isinstance(v, str) for v in accounts.values()):
            raise ConfigError(f"{path} is not a speakerctl credentials file")
        return dict(accounts)

    def provision(self, usernames: Iterable[str]) -> list[Issued]:
        """New secrets for these accounts (replacing any old one), saved as hashes."""
        issued = []
        for name in usernames:
            if name != CONTROLLER_USER:
                topics.check_id(name, "device id")
            secret = secrets.token_urlsafe(SECRET_BYTES)
            self.hashes[name] = hash_password(secret)
            issued.append(Issued(name, secret))
        self.save()
        return issued

    def revoke(self, username: str) -> None:
        """Remove an account (a stolen or retired cluster)."""
        self.hashes.pop(username, None)
        self.save()

    def save(self) -> None:
        """Write atomically, readable by the owner only."""
        private_dir(self.path.parent)
        text = json.dumps({"version": 1, "accounts": self.hashes}, indent=1, sort_keys=True)
        write_atomic(self.path, text, mode=PRIVATE)


def mosquitto_acl(controller: str, device_zones: Mapping[str, Iterable[str]]) -> list[str]:
    """ACL lines: the controller may do anything under the root; a cluster only its own topics.

    A cluster reads its own command topic, the command topics of its zone chain, content and
    live-frame topics, and writes only its own status and events. Nothing else grants a cluster a
    command topic, so only the controller's account can command.
    """
    root = TOPIC_ROOT
    lines = [
        f"user {controller}",
        f"topic readwrite {root}/#",
    ]
    for device, zones in device_zones.items():
        topics.check_id(device, "device id")
        lines += [
            f"user {device}",
            f"topic read {root}/dev/{device}/cmd",
            *(f"topic read {root}/zone/{zone}/cmd" for zone in zones),
            f"topic read {root}/content/+",
            f"topic read {root}/live/+",
            f"topic write {root}/dev/{device}/status",
            f"topic write {root}/dev/{device}/evt",
        ]
    return lines
