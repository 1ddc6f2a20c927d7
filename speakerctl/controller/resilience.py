"""What keeps a broadcast going through faults: publishing across broker outages, stable command ids."""

from __future__ import annotations

import hashlib

from speakerctl.broker.link import Link
from speakerctl.retry import Backoff, through_outages


async def publish_through_outages(link: Link, topic: str, payload: bytes, deadline_s: float) -> None:
    """Publish, waiting out a broker restart for at most `deadline_s`, then OutageTooLong."""
    await through_outages(lambda: link.publish(topic, payload), f"publish on {topic}", Backoff(deadline_s))


def play_command_id(broadcast_id: str, issued_at_ms: int) -> str:
    """The message id of a broadcast's play command, the same when a restarted controller re-sends it.

    Clusters drop a command whose id they have seen, so a resumed broadcast never plays twice.
    """
    return hashlib.sha256(f"{broadcast_id}@{issued_at_ms}".encode()).hexdigest()[:16]
