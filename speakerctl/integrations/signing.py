"""Webhook signatures: HMAC-SHA256 over the timestamp and the raw body, in the scheme Stripe documents.

The header is `Speakerctl-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`. A
receiver recomputes the HMAC over the raw bytes it received, compares in constant time, and refuses a
timestamp further than its tolerance from its clock (a replayed old delivery). Each attempt is signed
anew, so a retry carries a fresh timestamp; several `v1=` may be given while a secret is rotated.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

HEADER = "Speakerctl-Signature"
TOLERANCE_S = 300
"""How far a receiver should accept a signature's timestamp from its own clock."""


def signature(secret: bytes, body: bytes, timestamp: int) -> str:
    """The hex HMAC-SHA256 of `<timestamp>.<body>`."""
    return hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()


def sign(secrets: Sequence[bytes], body: bytes, timestamp: int) -> str:
    """The header value: the timestamp and one `v1=` per secret (more than one while rotating)."""
    return ",".join([f"t={timestamp}", *(f"v1={signature(s, body, timestamp)}" for s in secrets)])


def verify(secret: bytes, header: str, body: bytes, now: int, tolerance_s: int = TOLERANCE_S) -> bool:
    """Whether `header` signs `body` with `secret` at a time within `tolerance_s` of `now`."""
    parts = [p.partition("=") for p in header.split(",")]
    stamps = [v for k, _, v in parts if k == "t"]
    if len(stamps) != 1 or not stamps[0].isdigit() or abs(now - int(stamps[0])) > tolerance_s:
        return False
    expected = signature(secret, body, int(stamps[0]))
    return any(hmac.compare_digest(expected, v) for k, _, v in parts if k == "v1")
