"""The controller's command-signing keys on disk: create on first use, rotate, retire.

    <keys dir>/command-<key id>.key   private key, PKCS#8 PEM, mode 0600
    <keys dir>/active                 the key id commands are signed with
    <keys dir>/trusted.pub            public keys clusters must trust (give this file at provisioning)

With a passphrase (settings `key_passphrase` / `key_passphrase_file`) new private keys are written
encrypted (PKCS#8, the best encryption `cryptography` offers) and loading needs it.

Rotation: `rotate` makes a new key active and adds it to trusted.pub next to the old one; once every
cluster has the new file, `retire` drops the old key, whose signatures clusters then refuse.
"""

from __future__ import annotations

import logging
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    BestAvailableEncryption,
    Encoding,
    KeySerializationEncryption,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)

from speakerctl.errors import ConfigError
from speakerctl.files import PRIVATE, PUBLIC, private_dir, write_atomic
from speakerctl.protocol.signing import Signer

ACTIVE_NAME = "active"
TRUSTED_NAME = "trusted.pub"
_PASSPHRASE_HINT = "set SPEAKERCTL_KEY_PASSPHRASE or the key_passphrase_file setting to the key's passphrase"

log = logging.getLogger(__name__)


def trusted_path(keys_dir: Path) -> Path:
    """The public-key file clusters are provisioned with."""
    return keys_dir / TRUSTED_NAME


def load_or_create_signer(keys_dir: Path, passphrase: bytes | None = None) -> Signer:
    """The active signing key; a new one (and trusted.pub) on first use."""
    active = keys_dir / ACTIVE_NAME
    if not active.exists():
        return rotate(keys_dir, passphrase)
    return _load(keys_dir, active.read_text().strip(), passphrase)


def rotate(keys_dir: Path, passphrase: bytes | None = None) -> Signer:
    """Create a new key (encrypted with a passphrase), trust it next to the current ones, make it active."""
    signer = Signer(Ed25519PrivateKey.generate())
    private_dir(keys_dir)
    pem = signer.private.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, _encryption(passphrase))
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


def _encryption(passphrase: bytes | None) -> KeySerializationEncryption:
    return BestAvailableEncryption(passphrase) if passphrase else NoEncryption()


def _load(keys_dir: Path, key_id: str, passphrase: bytes | None) -> Signer:
    path = keys_dir / f"command-{key_id}.key"
    try:
        pem = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot load the command key {path}: {exc.strerror or exc}") from exc
    encrypted = b"ENCRYPTED" in pem.split(b"\n", 1)[0]
    if encrypted and not passphrase:
        raise ConfigError(
            f"the command key {path} is encrypted and no passphrase is set", hint=_PASSPHRASE_HINT
        )
    if passphrase and not encrypted:
        log.warning(
            "the command key %s is not encrypted although a passphrase is set; rotate to encrypt", path
        )
    try:
        private = load_pem_private_key(pem, password=passphrase if encrypted else None)
    except ValueError as exc:
        if encrypted:
            raise ConfigError(f"wrong passphrase for the command key {path}", hint=_PASSPHRASE_HINT) from exc
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
