"""A cluster's trust anchor: the controller's public keys, from the file given at provisioning."""

from __future__ import annotations

from pathlib import Path

from speakerctl.errors import ConfigError, ProtocolError
from speakerctl.protocol.signing import TrustedKeys


def read_trusted_keys(path: Path) -> TrustedKeys:
    """The keys of a public-key file (`ed25519 <key id> <base64>` lines), or ConfigError."""
    try:
        keys = TrustedKeys.parse(path.read_text(encoding="ascii"))
    except (OSError, UnicodeDecodeError, ProtocolError) as exc:
        raise ConfigError(f"cannot read trusted keys from {path}: {exc}") from exc
    if not keys.keys:
        raise ConfigError(f"{path} holds no public key", hint="provision the controller's trusted.pub")
    return keys
