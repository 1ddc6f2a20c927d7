"""Status and event ingestion: decode, route to live broadcasts, write to the store in batches."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from speakerctl.broker.link import Incoming
from speakerctl.clock import Clock
from speakerctl.controller.tracker import Tracker
from speakerctl.controller.uploader import Upload
from speakerctl.errors import ProtocolError, StoreError
from speakerctl.protocol import Ack, ContentRequest, Event, Status, chunks, codec, topics
from speakerctl.store import DeliveryUpdate, Store

log = logging.getLogger(__name__)


@dataclass(slots=True)
class IngestCounters:
    """What came in, and what was rejected."""

    statuses: int = 0
    events: int = 0
    content_requests: int = 0
    acks: int = 0
    malformed: int = 0
    unknown_devices: int = 0
    flushes: int = 0
    refused_commands: int = 0
    """Commands clusters refused for their signature since we started, from their statuses."""


class Ingestor:
    """Turns device messages into store rows and tracker updates."""

    def __init__(self, store: Store, clock: Clock, flush_interval_s: float = 0.25) -> None:
        self.store = store
        self.clock = clock
        self.flush_interval_s = flush_interval_s
        self.counters = IngestCounters()
        self._trackers: dict[str, Tracker] = {}
        self._uploads: dict[str, list[Upload]] = {}
        self._statuses: list[Status] = []
        self._events: list[DeliveryUpdate] = []
        self._lock = asyncio.Lock()
        self._acks: dict[str, asyncio.Future[Ack]] = {}
        self.refusals: dict[str, int] = {}
        """Per device, the refused-command count of its latest live status."""

    def track(self, tracker: Tracker, uploads: list[Upload]) -> None:
        """Route events of a live broadcast to its tracker and uploads."""
        self._trackers[tracker.broadcast_id] = tracker
        for upload in uploads:
            self._uploads.setdefault(upload.ref.sha256, []).append(upload)

    def untrack(self, tracker: Tracker, uploads: list[Upload]) -> None:
        """Stop routing to a finished broadcast."""
        self._trackers.pop(tracker.broadcast_id, None)
        for upload in uploads:
            live = self._uploads.get(upload.ref.sha256, [])
            if upload in live:
                live.remove(upload)

    async def handle(self, message: Incoming) -> None:
        """Handle one message from the broker; bad ones are counted and logged, never raised."""
        try:
            parsed = topics.parse(message.topic)
            if parsed.channel is topics.Channel.STATUS:
                self._on_status(parsed.key, codec.decode_status(message.payload))
            elif parsed.channel is topics.Channel.EVENTS:
                self._on_event(parsed.key, codec.decode_event(message.payload))
        except ProtocolError as exc:
            self.counters.malformed += 1
            log.warning("rejected a message on %s: %s", message.topic, exc)

    def _on_status(self, device_id: str, status: Status) -> None:
        if status.device_id != device_id:
            raise ProtocolError(f"status of {status.device_id!r} published on {device_id!r}'s topic")
        self.counters.statuses += 1
        self._note_refusals(status)
        self._statuses.append(status)

    def _note_refusals(self, status: Status) -> None:
        # A rising count means someone is publishing unsigned or forged commands to this cluster.
        before = self.refusals.get(status.device_id, 0)
        if status.rejected_commands > before:
            self.counters.refused_commands += status.rejected_commands - before
            log.warning(
                "%s refused %d command(s) with a bad signature: someone else may be commanding it",
                status.device_id,
                status.rejected_commands - before,
            )
        if status.online:
            self.refusals[status.device_id] = status.rejected_commands

    def expect_ack(self, command_id: str) -> asyncio.Future[Ack]:
        """A future resolved by the device's acknowledgement of a management command."""
        future: asyncio.Future[Ack] = asyncio.get_running_loop().create_future()
        self._acks[command_id] = future
        return future

    def forget_ack(self, command_id: str) -> None:
        """Stop waiting for an acknowledgement."""
        self._acks.pop(command_id, None)

    def _on_event(self, device_id: str, event: Event) -> None:
        if event.device_id != device_id:
            raise ProtocolError(f"event of {event.device_id!r} published on {device_id!r}'s topic")
        if isinstance(event, Ack):
            self.counters.acks += 1
            waiter = self._acks.pop(event.command_id, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(event)
            return
        if isinstance(event, ContentRequest):
            self.counters.content_requests += 1
            for upload in self._uploads.get(event.sha256, []):
                upload.request(chunks.from_ranges(event.missing))
            return
        self.counters.events += 1
        tracker = self._trackers.get(event.broadcast_id)
        if tracker is not None:
            tracker.update(event)
        self._events.append(DeliveryUpdate.from_event(event))

    async def run(self) -> None:
        """Flush batches to the store until cancelled."""
        while True:
            await asyncio.sleep(self.flush_interval_s)
            await self.flush()

    async def flush(self) -> None:
        """Write what has come in since the last flush."""
        async with self._lock:
            statuses, self._statuses = self._statuses, []
            events, self._events = self._events, []
            if not statuses and not events:
                return
            try:
                await asyncio.to_thread(self._write, statuses, events)
            except StoreError as exc:
                # Keep the batch for the next try rather than lose what the devices said.
                log.error("store write failed, will retry: %s", exc)
                self._statuses[:0], self._events[:0] = statuses, events

    def _write(self, statuses: list[Status], events: list[DeliveryUpdate]) -> None:
        if statuses:
            unknown = self.store.statuses.apply(statuses, self.clock.now())
            self.counters.unknown_devices += len(unknown)
            for device_id in unknown:
                log.warning("status from unknown device %r ignored; add it to the inventory", device_id)
        if events:
            self.store.deliveries.apply(events)
        self.counters.flushes += 1
