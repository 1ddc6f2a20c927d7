"""What keeps a broadcast going through faults: publishing across broker outages, stable command ids."""

from __future__ import annotations

import asyncio
import hashlib
import logging

from speakerctl.broker.link import Link
from speakerctl.errors import LinkError

log = logging.getLogger(__name__)
OUTAGE_RETRY_S = 0.5


async def publish_through_outages(link: Link, topic: str, payload: bytes) -> None:
    """Publish, waiting out a broker restart; the broadcast's own timeout bounds the wait."""
    while True:
        try:
            await link.publish(topic, payload)
            return
        except LinkError as exc:
            log.warning("publish on %s waits for the broker: %s", topic, exc)
            await asyncio.sleep(OUTAGE_RETRY_S)


def play_command_id(broadcast_id: str, issued_at_ms: int) -> str:
    """The message id of a broadcast's play command, the same when a restarted controller re-sends it.

    Clusters drop a command whose id they have seen, so a resumed broadcast never plays twice.
    """
    return hashlib.sha256(f"{broadcast_id}@{issued_at_ms}".encode()).hexdigest()[:16]
