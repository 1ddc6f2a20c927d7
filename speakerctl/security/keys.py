"""The controller's command-signing keys on disk: create on first use, rotate, retire.

    <keys dir>/command-<key id>.key   private key, PKCS#8 PEM, mode 0600
    <keys dir>/active                 the key id commands are signed with
    <keys dir>/trusted.pub            public keys clusters must trust (give this file at provisioning)

Rotation: `rotate` makes a new key active and adds it to trusted.pub next to the old one; once every
cluster has the new file, `retire` drops the old key, whose signatures clusters then refuse.
"""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)

from speakerctl.errors import ConfigError
from speakerctl.files import PRIVATE, PUBLIC, private_dir, write_atomic
from speakerctl.protocol.signing import Signer

ACTIVE_NAME = "active"
TRUSTED_NAME = "trusted.pub"


def trusted_path(keys_dir: Path) -> Path:
    """The public-key file clusters are provisioned with."""
    return keys_dir / TRUSTED_NAME


def load_or_create_signer(keys_dir: Path) -> Signer:
    """The active signing key; a new one (and trusted.pub) on first use."""
    active = keys_dir / ACTIVE_NAME
    if not active.exists():
        return rotate(keys_dir)
    return _load(keys_dir, active.read_text().strip())


def rotate(keys_dir: Path) -> Signer:
    """Create a new key, trust it next to the current ones, and make it the active one."""
    signer = Signer(Ed25519PrivateKey.generate())
    private_dir(keys_dir)
    pem = signer.private.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    write_atomic(keys_dir / f"command-{signer.key_id}.key", pem, mode=PRIVATE)
    lines = [*_trusted_lines(keys_dir), signer.public_line()]
    write_atomic(trusted_path(keys_dir), "".join(f"{line}\n" for line in lines).encode(), mode=PUBLIC)
    write_atomic(keys_dir / ACTIVE_NAME, f"{signer.key_id}\n".encode())
    return signer


def retire(keys_dir: Path, key_id: str) -> None:
    """Stop trusting a key that is no longer active, and delete its private half."""
    if (keys_dir / ACTIVE_NAME).exists() and (keys_dir / ACTIVE_NAME).read_text().strip() == key_id:
        raise ConfigError(f"key {key_id} is the active key", hint="rotate first, then retire the old key")
    lines = [line for line in _trusted_lines(keys_dir) if line.split()[1] != key_id]
    write_atomic(trusted_path(keys_dir), "".join(f"{line}\n" for line in lines).encode(), mode=PUBLIC)
    (keys_dir / f"command-{key_id}.key").unlink(missing_ok=True)


def _load(keys_dir: Path, key_id: str) -> Signer:
    path = keys_dir / f"command-{key_id}.key"
    try:
        private = load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot load the command key {path}: {exc}") from exc
    if not isinstance(private, Ed25519PrivateKey):
        raise ConfigError(f"{path} is not an Ed25519 key")
    return Signer(private)


def _trusted_lines(keys_dir: Path) -> list[str]:
    path = trusted_path(keys_dir)
    if not path.exists():
        return []
    return [
        line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")
    ]


def trusted_ids(keys_dir: Path) -> list[str]:
    """Key ids listed in trusted.pub, oldest first."""
    return [line.split()[1] for line in _trusted_lines(keys_dir)]
