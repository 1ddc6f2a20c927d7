"""Keeping clusters' clock offset estimates sharp: a ping to each online cluster now and then.

A cluster estimates its offset from the controller's clock as the least (arrival − issued_at) over its
recent commands (protocol §9.1) and starts a timed broadcast at start_at plus that offset. A play sent
to a zone reaches its clusters one after the other as the broker fans it out, so for the last of a
thousand every such sample is late by most of the fan-out, and so is its start. A ping goes to one
cluster, published as soon as it is stamped: its sample is the offset plus one hop, which the least
then picks. Nobody waits for the acks (the ingestor counts them and drops them).
"""

from __future__ import annotations

import asyncio
import logging
import secrets

from speakerctl.broker.link import Link
from speakerctl.clock import Clock, to_ms
from speakerctl.protocol import Command, Ping, Priority, codec, topics
from speakerctl.protocol.signing import Signer
from speakerctl.store import Store

log = logging.getLogger(__name__)
PINGS_PER_S = 50.0
"""Pace of a round: one at a time, so a cluster's ping never queues behind a burst (10,000 in 200 s)."""
FIRST_ROUND_AFTER_S = 60.0
"""serve's first round waits this long (at most clock_ping_s): start-up resumes broadcasts and pushes
airings, and a round meanwhile would share the loop and the broker with their publishes."""
PING_TTL_MS = 10_000
"""A ping held by the broker while its cluster was away arrives late, adds a large sample (which the
least ignores) and is answered `expired`: harmless either way."""


class ClockKeeper:
    """Pings every online cluster once per round, a round every `every_s` seconds."""

    def __init__(
        self, link: Link, signer: Signer, store: Store, clock: Clock, pings_per_s: float = PINGS_PER_S
    ) -> None:
        self.link, self.signer, self.store, self.clock = link, signer, store, clock
        self.pause_s = 1.0 / pings_per_s
        self.rounds = 0

    async def run(self, every_s: float) -> None:
        """A round after FIRST_ROUND_AFTER_S (or `every_s` if shorter), then one every `every_s`, until
        cancelled; a failed round is retried then."""
        await asyncio.sleep(min(every_s, FIRST_ROUND_AFTER_S))
        while True:
            try:
                await self.round()
            except Exception as exc:  # a broker outage, a store error: the next round tries again
                log.warning("keeping the clusters' clocks: a round of pings failed: %s", exc)
            await asyncio.sleep(every_s)

    async def round(self) -> int:
        """Ping each cluster the store shows online, one at a time; how many were pinged."""
        devices = await asyncio.to_thread(self.store.devices.all, online=True)
        for device in devices:
            await self.ping(device.id)
            await asyncio.sleep(self.pause_s)
        self.rounds += 1
        return len(devices)

    async def ping(self, device_id: str) -> None:
        """One ping, stamped just before it is signed and published."""
        topic = topics.device_cmd(device_id)
        now = to_ms(self.clock.now())
        command = Command(secrets.token_hex(8), now, now + PING_TTL_MS, Priority.NORMAL, Ping())
        await self.link.publish(topic, codec.encode(self.signer.sign_for(command, topic)))
