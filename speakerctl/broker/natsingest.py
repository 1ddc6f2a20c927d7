"""Ingestion shared between controllers on a NATS cluster, where MQTT has no `$share`.

NATS maps an MQTT topic to a subject (`pa/v1/dev/X/status` is `pa.v1.dev.X.status`), so what clusters
publish over MQTT is visible to NATS clients too. A JetStream stream with work-queue retention captures
the clusters' statuses and events; every controller binds the same durable pull consumer, and JetStream
hands each message to one of them. A message is acknowledged once the handler took it; one whose
controller dies before that is redelivered to another after `ack_wait`, which the idempotent writes of
the store (protocol §10) make harmless. The stream also holds what arrives while no controller runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

import nats
from nats.aio.client import Client as NatsClient
from nats.errors import Error as NatsError
from nats.js.api import AckPolicy, ConsumerConfig, RetentionPolicy, StreamConfig
from nats.js.errors import BadRequestError

from speakerctl.broker.link import Handler, Incoming
from speakerctl.errors import LinkError

log = logging.getLogger(__name__)

STREAM = "SPEAKERCTL_INGEST"
DURABLE = "speakerctl-ingest"
_BATCH = 256
_IDLE_S = 1.0
"""How long one fetch waits for messages before it asks again."""
_CONNECT_PATIENCE_S = 10.0
"""How long a first connection tries the servers (nats-py would go on for ever) before LinkError."""


def subject_of(topic: str) -> str:
    """The NATS subject of an MQTT topic or filter (`/` → `.`, `+` → `*`, `#` → `>`)."""
    return ".".join({"+": "*", "#": ">"}.get(level, level) for level in topic.split("/"))


def topic_of(subject: str) -> str:
    """The MQTT topic of a NATS subject (topics of protocol v1 hold no `.`, so no escapes)."""
    return subject.replace(".", "/")


class SharedIngest:
    """One controller's share of the fleet's statuses and events, through a JetStream work queue."""

    def __init__(
        self,
        servers: Sequence[str],
        handler: Handler,
        topics: Sequence[str],
        *,
        replicas: int = 3,
        ack_wait_s: float = 30.0,
        batch: int = _BATCH,
        connect_patience_s: float = _CONNECT_PATIENCE_S,
    ) -> None:
        self._servers = list(servers)
        self._handler = handler
        self._subjects = [subject_of(t) for t in topics]
        self._replicas = replicas
        self._ack_wait_s = ack_wait_s
        self._batch = batch
        self._connect_patience_s = connect_patience_s
        self.ready = asyncio.Event()
        self.handled = 0

    async def run(self) -> None:
        """Take messages until cancelled; LinkError when NATS cannot be reached or fails under us.

        nats-py reconnects by itself across a lost node; what it cannot ride out (no server at all,
        JetStream without a quorum for longer than a request) ends the run, for the caller to retry.
        """
        servers = ", ".join(self._servers)
        client = await self._connect(servers)
        try:
            await self._serve(client)
        except (NatsError, OSError) as exc:
            raise LinkError(f"ingestion through NATS at {servers} failed: {exc!r}") from exc
        finally:
            self.ready.clear()  # and a disconnection from now on is ours
            with contextlib.suppress(NatsError, OSError):
                await client.close()

    async def _lost(self) -> None:
        if self.ready.is_set():
            log.warning("ingestion lost its NATS server; nats-py reconnects to another")

    async def _connect(self, servers: str) -> NatsClient:
        # Reconnects after a first connection are nats-py's own, for ever, across the servers given.
        try:
            async with asyncio.timeout(self._connect_patience_s):
                return await nats.connect(
                    servers=self._servers,
                    max_reconnect_attempts=-1,
                    name=DURABLE,
                    error_cb=_noted,
                    disconnected_cb=self._lost,
                    reconnected_cb=_back,
                )
        except (NatsError, OSError) as exc:  # TimeoutError is an OSError
            raise LinkError(f"cannot reach NATS at {servers}: {exc!r}") from exc

    async def _serve(self, client: NatsClient) -> None:
        stream = client.jetstream()
        await self._declare(stream)
        pull = await stream.pull_subscribe_bind(DURABLE, STREAM)
        self.ready.set()
        while True:
            await self._take(pull)

    async def _declare(self, stream: nats.js.JetStreamContext) -> None:
        # Every controller declares the same stream and consumer; the first creates them.
        config = StreamConfig(
            name=STREAM,
            subjects=self._subjects,
            retention=RetentionPolicy.WORK_QUEUE,
            num_replicas=self._replicas,
        )
        with contextlib.suppress(BadRequestError):
            await stream.add_stream(config)
        consumer = ConsumerConfig(
            durable_name=DURABLE, ack_policy=AckPolicy.EXPLICIT, ack_wait=self._ack_wait_s
        )
        with contextlib.suppress(BadRequestError):
            await stream.add_consumer(STREAM, consumer)

    async def _take(self, pull: nats.js.JetStreamContext.PullSubscription) -> None:
        try:
            messages = await pull.fetch(self._batch, timeout=_IDLE_S)
        except TimeoutError:  # nats-py's own, or asyncio's when the no-wait probe's answer came late
            return
        for message in messages:
            await self._handler(Incoming(topic_of(message.subject), message.data))
            await message.ack()
            self.handled += 1


async def _noted(exc: Exception) -> None:
    # nats-py reports every failed try of every server; one line each, the caller's retry warns.
    log.info("NATS: %r", exc)


async def _back() -> None:
    log.warning("ingestion reconnected to NATS")
