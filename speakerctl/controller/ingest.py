"""Status and event ingestion: decode, route to live broadcasts, write to the store in batches."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from speakerctl.broker.link import Incoming
from speakerctl.clock import Clock, to_ms
from speakerctl.controller.backlog import Backlog, Shrunk, latest_per_device, merged_reports
from speakerctl.controller.tracker import Tracker
from speakerctl.controller.uploader import Upload
from speakerctl.errors import ProtocolError, StoreError, StoreUnavailable
from speakerctl.logs import Throttled
from speakerctl.protocol import Ack, ContentRequest, Event, Status, chunks, codec, topics
from speakerctl.protocol.limits import COMPACT_FEATURE, FUTURE_TOLERANCE_MS
from speakerctl.protocol.live import LiveEvent
from speakerctl.store import DeliveryUpdate, Store

log = logging.getLogger(__name__)
Row = TypeVar("Row", Status, DeliveryUpdate)
BACKLOG_CAP = 50_000
"""Statuses, and delivery reports, held in memory while the store is down (each; see backlog.py)."""


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
    future_timestamps: int = 0
    """Statuses and events stamped further ahead of our clock than FUTURE_TOLERANCE_MS; taken as "now"."""
    set_aside: int = 0
    """Rows the store refused one by one (poisonous), left out so the rest of their batch is stored."""
    dropped_statuses: int = 0
    """Statuses dropped, oldest first, because the backlog held while the store was down was full."""
    merged_statuses: int = 0
    """Statuses of a full backlog folded into their device's latest one."""
    merged_events: int = 0
    """Delivery reports of a full backlog folded into another of the same delivery (duplicates first)."""
    dropped_events: int = 0
    """Delivery reports dropped, oldest first, from a backlog still full after merging (logged)."""
    live_events: int = 0
    """Live-stream events from clusters (v1.2), routed to the running live session."""


class Ingestor:
    """Turns device messages into store rows and tracker updates."""

    def __init__(
        self, store: Store, clock: Clock, flush_interval_s: float = 0.25, backlog_cap: int = BACKLOG_CAP
    ) -> None:
        self.store = store
        self.clock = clock
        self.flush_interval_s = flush_interval_s
        self.backlog_cap = backlog_cap
        self.counters = IngestCounters()
        self.warnings = Throttled(log, clock.monotonic)
        self._trackers: dict[str, Tracker] = {}
        self._watchers: dict[str, list[Tracker]] = {}
        self._uploads: dict[str, list[Upload]] = {}
        self._statuses = Backlog(backlog_cap, latest_per_device)
        self._events = Backlog(backlog_cap, merged_reports)
        self._lock = asyncio.Lock()
        self._acks: dict[str, asyncio.Future[Ack]] = {}
        self._thawed = False
        self.refusals: dict[str, int] = {}
        """Per device, the refused-command count of its latest live status."""
        self.features: dict[str, frozenset[str]] = {}
        """Per device seen online, the protocol features of its latest status (v1.2 `live`)."""
        self.holds: dict[str, frozenset[str]] = {}
        """Per compact (v1.3) device seen online, the content hashes its latest status lists as cached."""
        self._live: dict[str, Callable[[LiveEvent], None]] = {}

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

    def watch(self, watcher: Tracker) -> None:
        """Also route a broadcast's events to `watcher` (e.g. to count a stop's confirmations), beside
        whoever follows the broadcast itself."""
        self._watchers.setdefault(watcher.broadcast_id, []).append(watcher)

    def unwatch(self, watcher: Tracker) -> None:
        """Stop routing to `watcher`."""
        watchers = self._watchers.get(watcher.broadcast_id, [])
        if watcher in watchers:
            watchers.remove(watcher)
        if not watchers:
            self._watchers.pop(watcher.broadcast_id, None)

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
            self.warnings.log(
                "malformed messages", message.topic, "rejected a message on %s: %s", message.topic, exc
            )

    def _on_status(self, device_id: str, status: Status) -> None:
        if status.device_id != device_id:
            raise ProtocolError(f"status of {status.device_id!r} published on {device_id!r}'s topic")
        self.counters.statuses += 1
        self._note_refusals(status)
        self._note_features(status)
        self._note_statuses(self._statuses.add(self._judged(status)))

    def _note_features(self, status: Status) -> None:
        if status.online:
            self.features[status.device_id] = frozenset(status.features)
            if COMPACT_FEATURE in status.features:
                self.holds[status.device_id] = frozenset(status.cached)
        else:
            self.features.pop(status.device_id, None)
            self.holds.pop(status.device_id, None)

    def quiet(self, device_ids: Iterable[str], hashes: Iterable[str]) -> set[str]:
        """Devices that answer with `playing` alone (v1.3, one of `hashes` cached): no accept to await."""
        wanted = frozenset(hashes)
        return {d for d in device_ids if self.holds.get(d, frozenset()) & wanted}

    def _judged(self, status: Status) -> Status:
        """`status` with a time stamp from the future taken as our "now", so it never freezes the device."""
        now_ms = to_ms(self.clock.now())
        if status.ts_ms <= now_ms + FUTURE_TOLERANCE_MS:
            return status
        self._note_future(status.device_id, status.ts_ms, now_ms)
        return dataclasses.replace(status, ts_ms=now_ms)

    def _note_future(self, device_id: str, ts_ms: int, now_ms: int) -> None:
        self.counters.future_timestamps += 1
        self.warnings.log(
            "time stamps from the future",
            device_id,
            "%s stamps its messages %d s ahead of our clock; taken as now: check its clock",
            device_id,
            (ts_ms - now_ms) // 1000,
        )

    def _note_statuses(self, shrunk: Shrunk) -> None:
        self.counters.merged_statuses += shrunk.merged
        self.counters.dropped_statuses += shrunk.dropped
        if shrunk.merged or shrunk.dropped:
            self.warnings.log(
                "status backlog merges",
                "backlog",
                "status backlog full (%d) while the store is away: kept each device's latest, "
                "merged %d, dropped %d",
                self.backlog_cap,
                shrunk.merged,
                shrunk.dropped,
            )

    def _note_events(self, shrunk: Shrunk) -> None:
        self.counters.merged_events += shrunk.merged
        self.counters.dropped_events += shrunk.dropped
        if shrunk.merged:
            self.warnings.log(
                "delivery backlog merges",
                "backlog",
                "delivery backlog full (%d) while the store is away: merged %d reports into the "
                "highest-ranked of their delivery",
                self.backlog_cap,
                shrunk.merged,
            )
        if shrunk.dropped:
            self.warnings.log(
                "dropped delivery reports",
                "backlog",
                "delivery backlog still full (%d) after merging: dropped the %d oldest reports",
                self.backlog_cap,
                shrunk.dropped,
            )

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
        if isinstance(event, LiveEvent):
            self._on_live(event)
            return
        if isinstance(event, ContentRequest):
            self.counters.content_requests += 1
            for upload in self._uploads.get(event.sha256, []):
                upload.request(chunks.from_ranges(event.missing))
            return
        self.counters.events += 1
        now_ms = to_ms(self.clock.now())
        if event.ts_ms > now_ms + FUTURE_TOLERANCE_MS:
            self._note_future(event.device_id, event.ts_ms, now_ms)
            event = dataclasses.replace(event, ts_ms=now_ms)
        tracker = self._trackers.get(event.broadcast_id)
        if tracker is not None:
            tracker.update(event)
        for watcher in self._watchers.get(event.broadcast_id, ()):
            watcher.update(event)
        self._note_events(self._events.add(DeliveryUpdate.from_event(event)))

    def _on_live(self, event: LiveEvent) -> None:
        self.counters.live_events += 1
        listener = self._live.get(event.stream_id)
        if listener is not None:
            listener(event)

    def track_live(self, stream_id: str, listener: Callable[[LiveEvent], None]) -> None:
        """Route the live events of one stream to `listener` (until `untrack_live`)."""
        self._live[stream_id] = listener

    def untrack_live(self, stream_id: str) -> None:
        """Stop routing a finished stream's events."""
        self._live.pop(stream_id, None)

    async def run(self) -> None:
        """Flush batches to the store until cancelled."""
        while True:
            await asyncio.sleep(self.flush_interval_s)
            await self.flush()

    async def flush(self) -> None:
        """Write what has come in since the last flush; never raises but to cancel."""
        async with self._lock:
            self.warnings.flush()
            statuses, events = self._statuses.take(), self._events.take()
            if not statuses and not events:
                return
            retry_statuses, retry_events = await asyncio.to_thread(self._write, statuses, events)
            # Keep what the store could not take now for the next try rather than lose it.
            self._note_statuses(self._statuses.put_back(retry_statuses))
            self._note_events(self._events.put_back(retry_events))

    @property
    def held(self) -> int:
        """Statuses and delivery reports waiting for the store."""
        return len(self._statuses) + len(self._events)

    def _write(
        self, statuses: list[Status], events: list[DeliveryUpdate]
    ) -> tuple[list[Status], list[DeliveryUpdate]]:
        """Write both batches: what is left to retry because the store is unavailable."""
        if not self._thawed:
            self._thaw()
        retry_statuses = self._isolating(statuses, self._write_statuses) if statuses else []
        retry_events = self._isolating(events, self.store.deliveries.apply) if events else []
        self.counters.flushes += 1
        return retry_statuses, retry_events

    def _thaw(self) -> None:
        """Once: stamps from the future stored before (or by a wrong clock) must not freeze a device."""
        try:
            thawed = self.store.statuses.clamp_future(self.clock.now())
        except StoreError as exc:
            self.warnings.log("store outages", "store", "store unavailable, will retry: %s", exc)
            return
        self._thawed = True
        if thawed:
            log.warning("%d device(s) had a status time stamp from the future: taken as now", thawed)

    def _write_statuses(self, statuses: Sequence[Status]) -> None:
        unknown = self.store.statuses.apply(statuses, self.clock.now())
        self.counters.unknown_devices += len(unknown)
        for device_id in unknown:
            self.warnings.log(
                "statuses from unknown devices",
                device_id,
                "status from unknown device %r ignored; add it to the inventory",
                device_id,
            )

    def _isolating(self, batch: list[Row], write: Callable[[list[Row]], object]) -> list[Row]:
        """Write `batch`, bisecting a refused one to set aside its poisonous rows; the rows to retry."""
        try:
            write(batch)
        except StoreUnavailable as exc:
            self.warnings.log("store outages", "store", "store unavailable, will retry: %s", exc)
            return batch
        except Exception as exc:
            if len(batch) > 1:
                mid = len(batch) // 2
                return self._isolating(batch[:mid], write) + self._isolating(batch[mid:], write)
            self._set_aside(batch[0], exc)
        return []

    def _set_aside(self, row: Status | DeliveryUpdate, exc: Exception) -> None:
        self.counters.set_aside += 1
        self.warnings.log(
            "rows the store refused",
            row.device_id,
            "set aside a row of %s the store refused: %s",
            row.device_id,
            exc,
        )
