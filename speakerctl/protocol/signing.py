"""Ed25519 command signatures: the `sig` text format, key ids and trusted-key sets; no I/O.

    sig = "<key id>.<base64url of the 64-byte signature, no padding>"

The key id is the first 16 hex digits of the SHA-256 of the raw 32-byte public key, so a cluster
trusting several keys (during a rotation) knows which one to check without trying them all.
A public-key file has one key a line, `ed25519 <key id> <base64 of the raw public key>`; `#` starts
a comment.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from speakerctl.errors import ProtocolError, SignatureError
from speakerctl.protocol.codec import signing_bytes
from speakerctl.protocol.messages import Command

KEY_ALGORITHM = "ed25519"
KEY_ID_HEX = 16
SIGNATURE_BYTES = 64


def key_id(public: Ed25519PublicKey) -> str:
    """The key id of a public key: 16 hex digits of the SHA-256 of its raw bytes."""
    return hashlib.sha256(_raw(public)).hexdigest()[:KEY_ID_HEX]


def _raw(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(Encoding.Raw, PublicFormat.Raw)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64url(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise SignatureError(f"signature is not base64url: {exc}") from exc


@dataclass(frozen=True, slots=True)
class Signer:
    """The controller's signing key; `sign` returns the command with its `sig` set."""

    private: Ed25519PrivateKey

    @property
    def key_id(self) -> str:
        """Id of the matching public key."""
        return key_id(self.private.public_key())

    def sign(self, command: Command) -> Command:
        """The command with a signature over its canonical bytes."""
        unsigned = dataclasses.replace(command, signature=None)
        signature = self.private.sign(signing_bytes(unsigned))
        return dataclasses.replace(command, signature=f"{self.key_id}.{_b64url(signature)}")

    def sign_for(self, command: Command, topic: str) -> Command:
        """The command addressed to `topic` and signed: a copy replayed on another topic is refused."""
        return self.sign(dataclasses.replace(command, to=topic))

    def public_line(self) -> str:
        """This key's line for a public-key file."""
        return format_public_key(self.private.public_key())


def format_public_key(public: Ed25519PublicKey) -> str:
    """`ed25519 <key id> <base64 raw key>`: one line of a public-key file."""
    return f"{KEY_ALGORITHM} {key_id(public)} {base64.b64encode(_raw(public)).decode('ascii')}"


@dataclass(frozen=True, slots=True)
class TrustedKeys:
    """The public keys a cluster accepts commands from, by key id."""

    keys: Mapping[str, Ed25519PublicKey] = dataclasses.field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> TrustedKeys:
        """Keys from the text of a public-key file, or ProtocolError naming the bad line."""
        keys: dict[str, Ed25519PublicKey] = {}
        for number, line in enumerate(text.splitlines(), 1):
            line = line.split("#", 1)[0].strip()
            if line:
                public = _parse_line(line, number)
                keys[key_id(public)] = public
        return cls(keys)

    @classmethod
    def of(cls, publics: Iterable[Ed25519PublicKey]) -> TrustedKeys:
        """A set of the given public keys."""
        return cls({key_id(p): p for p in publics})

    def verify(self, command: Command) -> None:
        """Return if the command carries a valid signature by a trusted key, else SignatureError."""
        if not command.signature:
            raise SignatureError("command is not signed")
        kid, _, encoded = command.signature.partition(".")
        public = self.keys.get(kid)
        if public is None:
            raise SignatureError(f"command is signed by unknown key {kid[:KEY_ID_HEX]!r}")
        signature = _unb64url(encoded)
        if len(signature) != SIGNATURE_BYTES:
            raise SignatureError(f"signature is {len(signature)} bytes, not {SIGNATURE_BYTES}")
        signed = (_raw(public), signature, signing_bytes(command))
        if signed in _verified:
            return
        try:
            public.verify(signature, signed[2])
        except InvalidSignature as exc:
            raise SignatureError(f"bad signature by key {kid}") from exc
        _remember_verified(signed)

    def verify_on(self, command: Command, topic: str, *, require_target: bool = True) -> None:
        """`verify`, and check the command was addressed to the topic it arrived on."""
        self.verify(command)
        if command.to is None and require_target:
            raise SignatureError("command names no target topic")
        if command.to is not None and command.to != topic:
            raise SignatureError(f"command addressed to {command.to} arrived on {topic}")


VERIFIED_KEPT = 256
"""Valid signatures remembered per process (`_verified`)."""
_verified: dict[tuple[bytes, bytes, bytes], None] = {}
"""Signatures found valid lately, by public key, signature and signed bytes, oldest first, process-wide.

A zone command reaches every cluster of the zone, and a simulator runs thousands of clusters in one
process: there they would check the same signature over the same bytes one after the other on one
core (81 µs each with `cryptography`'s Ed25519: 0.4 s for 5,000), while real clusters each check it
on their own CPU at once. The check is deterministic, so a hit (the same key, signature and bytes) is
as good as checking again; only valid signatures are kept."""


def _remember_verified(signed: tuple[bytes, bytes, bytes]) -> None:
    _verified[signed] = None
    if len(_verified) > VERIFIED_KEPT:
        _verified.pop(next(iter(_verified)), None)


def _parse_line(line: str, number: int) -> Ed25519PublicKey:
    parts = line.split()
    if len(parts) != 3 or parts[0] != KEY_ALGORITHM:
        raise ProtocolError(f"public key line {number}: expected `ed25519 <key id> <base64 key>`")
    try:
        public = Ed25519PublicKey.from_public_bytes(base64.b64decode(parts[2], validate=True))
    except (binascii.Error, ValueError) as exc:
        raise ProtocolError(f"public key line {number}: not a raw Ed25519 key in base64") from exc
    if key_id(public) != parts[1]:
        raise ProtocolError(f"public key line {number}: key id {parts[1]} does not match the key")
    return public


__all__ = ["Signer", "TrustedKeys", "format_public_key", "key_id"]
