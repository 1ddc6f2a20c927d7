"""The controller: one MQTT link, ingestion, and broadcasts from plan to final report."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import datetime

from speakerctl.audio import ContentStore
from speakerctl.broker.link import Link
from speakerctl.broker.natsingest import SharedIngest
from speakerctl.clock import Clock, SystemClock, to_ms
from speakerctl.config import Settings
from speakerctl.controller.ingest import Ingestor
from speakerctl.controller.pause import pause_at
from speakerctl.controller.planning import Plan, PlayOptions, plan_broadcast, resolve_targets
from speakerctl.controller.resilience import play_command_id, publish_through_outages
from speakerctl.controller.session import Session, command_session
from speakerctl.controller.tracker import Tracker
from speakerctl.controller.uploader import Upload
from speakerctl.errors import AckTimeout
from speakerctl.protocol import (
    Command,
    Ping,
    Play,
    PreemptPolicy,
    Priority,
    Reboot,
    SetVolume,
    Stop,
    codec,
    topics,
)
from speakerctl.protocol.lifecycle import FINISHED
from speakerctl.retry import Backoff, through_outages
from speakerctl.security.keys import load_or_create_signer
from speakerctl.store import BroadcastState, Claim, Fence, Store

log = logging.getLogger(__name__)
STOP_CATCH_UP_S = 1.0
"""How often a followed broadcast that saw a stop reads the store for the stop's other clusters..."""
STOP_CATCH_UP_FOR_S = 30.0
"""...and for how long after the last stop report it saw."""
Progress = Callable[[Counter[str], int], None]


@dataclass(frozen=True, slots=True)
class ManageResult:
    """A device's answer to a management command, with the measured round trip."""

    device_id: str
    ok: bool
    detail: str
    rtt_ms: float
    clock_offset_ms: float


@dataclass(frozen=True, slots=True)
class BroadcastRequest:
    """What a broadcaster asks for."""

    bulletin_id: int
    targets: tuple[str, ...]
    priority: Priority = Priority.NORMAL
    start_at: datetime | None = None
    """Absolute start for every cluster (synchronised start, or a push ahead of air time)."""
    expires_at: datetime | None = None
    volume: int | None = None
    on_preempt: PreemptPolicy = PreemptPolicy.DROP
    broadcast_id: str = ""
    started_by: str = ""
    """The user who asks for it, recorded with the broadcast."""
    approved_by: str = ""
    """The user who let it air: the approver, or the sender whose zone's policy needs no approval."""
    fence: Fence | None = None
    """The lease it is sent under (the scheduler's, for an occurrence); else the controller's own."""
    claim: Claim | None = None
    """The schedule occurrence it airs (claimed once, whoever sends it)."""


@dataclass(frozen=True, slots=True)
class BroadcastResult:
    """How a broadcast ended, per device state."""

    broadcast_id: str
    total: int
    counts: dict[str, int]
    egress_bytes: int
    upload_bytes: int
    reach_latency_s: float | None = None

    @property
    def played(self) -> int:
        """Devices that played it to the end."""
        return self.counts.get(FINISHED, 0)

    @property
    def complete(self) -> bool:
        """Whether every targeted device played it."""
        return self.played == self.total


class Controller:
    """Owns the MQTT link and the ingestion loop; runs broadcasts over them."""

    def __init__(
        self, settings: Settings, store: Store, clock: Clock | None = None, session: Session | None = None
    ) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock or SystemClock()
        self.content = ContentStore(settings.content_dir)
        self.signer = load_or_create_signer(settings.keys_dir, settings.signing_passphrase())
        self.ingestor = Ingestor(store, self.clock)
        self.last_result: BroadcastResult | None = None
        """The last broadcast this controller ran (for /metrics)."""
        self.session = session or command_session(settings.data_dir, settings.client_id)
        self.fence: Fence | None = None
        """This controller's own lease while several share the database (set by the coordinator)."""
        self.link = Link(
            settings.broker_address,
            self.ingestor.handle,
            client_id=self.session.client_id,
            persistent=self.session.persistent,
            fallbacks=settings.broker_fallbacks,
        )
        urls = settings.ingest_nats_urls
        self.shared_ingest = SharedIngest(urls, self.ingestor.handle, [topics.ALL_STATUS]) if urls else None
        """Statuses through a NATS cluster's JetStream work queue (`ingest_nats`), else None: over MQTT."""

    async def _on_connect(self) -> None:
        # Statuses (the bulk) split between controllers in a shared subscription, or through NATS where
        # the broker has no `$share`; events reach every one of them: acks, content requests and
        # reports belong to whoever follows that broadcast.
        if self.shared_ingest is None:
            await self.link.subscribe([topics.shared(topics.ALL_STATUS, self.settings.shared_group)])
        await self.link.subscribe([topics.ALL_EVENTS])

    @asynccontextmanager
    async def running(self, *, fail_fast: bool = True) -> AsyncIterator[Controller]:
        """Run the link and ingestion for the duration of the block."""
        await self._on_connect()
        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(self.link.run(fail_fast=fail_fast)), tg.create_task(self.ingestor.run())]
            if self.shared_ingest is not None:
                tasks.append(tg.create_task(self._ingest_through_nats(self.shared_ingest)))
            try:
                await self.link.wait_connected(15)
                if self.settings.shared_group or self.shared_ingest:  # a persistent session may hold it
                    await self.link.unsubscribe([topics.ALL_STATUS])
                await self._settle_retained()
                yield self
            finally:
                await self.ingestor.flush()
                for task in tasks:
                    task.cancel()

    async def _ingest_through_nats(self, shared: SharedIngest) -> None:
        # Until cancelled: a NATS outage is logged and waited out, it never stops the controller.
        await through_outages(shared.run, "status ingestion through NATS", Backoff(deadline_s=None))

    async def _settle_retained(self, quiet_s: float = 0.2, limit_s: float = 3.0) -> None:
        # The broker replays every retained status right after we subscribe; knowing who is
        # online before the first broadcast lets one upload serve the whole fleet.
        loop = asyncio.get_running_loop()
        deadline, seen = loop.time() + limit_s, -1
        while loop.time() < deadline and seen != self.ingestor.counters.statuses:
            seen = self.ingestor.counters.statuses
            await asyncio.sleep(quiet_s)
        await self.ingestor.flush()

    async def broadcast(self, request: BroadcastRequest, progress: Progress | None = None) -> BroadcastResult:
        """Send a bulletin to its targets and follow it until every device is final or time runs out."""
        now = self.clock.now()
        plan = await asyncio.to_thread(
            plan_broadcast,
            self.store,
            request.bulletin_id,
            request.targets,
            request.priority,
            now,
            _ttl_s(request, now, self.settings.command_ttl_s),
            request.broadcast_id or new_broadcast_id(now),
            PlayOptions(
                request.start_at,
                request.volume,
                request.on_preempt,
                self.session.client_id,
                request.started_by,
                request.approved_by,
                request.fence or self.fence,
                request.claim,
            ),
        )
        command = _command(plan, request, to_ms(now))
        tracker = Tracker(plan.broadcast_id, list(plan.device_ids), set(plan.online), self.clock)
        wait_s = _wait_s(request, now)
        fresh = not request.broadcast_id  # an id made just now: no cluster can have reported on it yet
        self.last_result = await self.execute(
            plan, command, tracker, progress, wait_s, fresh=fresh, reissue=True
        )
        return self.last_result

    async def execute(
        self,
        plan: Plan,
        command: Command,
        tracker: Tracker,
        progress: Progress | None = None,
        wait_s: float = 0.0,
        *,
        fresh: bool = False,
        reissue: bool = False,
    ) -> BroadcastResult:
        """Sign and send a planned broadcast, upload its content, follow it and record the end.

        `fresh`: its id was made for this call, so the store holds no report of it to catch up on
        before sending (a flush and a read of every delivery: tens of ms at 1,000 clusters, all of
        them between the command's issued_at and its publish, which the clusters' offset estimates
        and the fan-out time both count).
        `reissue`: a play sent for the first time, stamped again right before its publish (`_reissued`);
        a resumed play is sent exactly as first sent."""
        blobs = await asyncio.to_thread(lambda: [self.content.read(ref.sha256) for ref in plan.variants])
        uploads = [
            Upload(self.link, ref, blob, self.settings.accept_window_s, self.settings.broadcast_timeout_s)
            for ref, blob in zip(plan.variants, blobs, strict=True)
        ]
        egress_before = self.link.bytes_out
        tracker.quiet = self.ingestor.quiet(tracker.online, (ref.sha256 for ref in plan.variants))
        self.ingestor.track(tracker, uploads)
        if not fresh:
            await self._catch_up(tracker)
        closing = True
        try:
            await self._run(plan, command, tracker, uploads, progress, wait_s, reissue=reissue)
        except asyncio.CancelledError:
            closing = False  # stopped, not ended: it stays running for `serve` or `resume`
            raise
        finally:
            self.ingestor.untrack(tracker, uploads)
            if closing:
                await self._close(plan, tracker)
        return BroadcastResult(
            plan.broadcast_id,
            len(plan.device_ids),
            dict(tracker.counts()),
            self.link.bytes_out - egress_before,
            sum(u.bytes_sent for u in uploads),
            tracker.reach_latency_s,
        )

    async def stop(self, broadcast_id: str, where: Sequence[str] = ()) -> None:
        """Tell clusters not to air a broadcast (NotFound if it was never sent): those of the zones and
        devices `where` (a stop may go to any zone topic, protocol §6), by default all it was sent to."""
        targets = where or (await asyncio.to_thread(self.store.broadcasts.get, broadcast_id)).targets
        cmd_topics, _ = await asyncio.to_thread(resolve_targets, self.store, targets)
        now = to_ms(self.clock.now())
        ttl = self.settings.command_ttl_s * 1000
        command = Command(secrets.token_hex(8), now, now + ttl, Priority.NORMAL, Stop(broadcast_id))
        for topic in cmd_topics:  # signed per topic: clusters refuse a copy replayed elsewhere
            await self.link.publish(topic, codec.encode(self.signer.sign_for(command, topic)))

    async def manage(
        self, device_id: str, body: SetVolume | Reboot | Ping, timeout: float = 10.0
    ) -> ManageResult:
        """Send a management command to one device and wait for its acknowledgement, or AckTimeout."""
        await asyncio.to_thread(self.store.devices.get, device_id)  # NotFound for an unknown id
        now = self.clock.now()
        command = self.signer.sign_for(
            Command(
                secrets.token_hex(8), to_ms(now), to_ms(now) + int(timeout * 1000), Priority.NORMAL, body
            ),
            topics.device_cmd(device_id),
        )
        waiter = self.ingestor.expect_ack(command.msg_id)
        sent = self.clock.monotonic()
        try:
            await self.link.publish(topics.device_cmd(device_id), codec.encode(command), timeout=timeout)
            ack = await asyncio.wait_for(waiter, timeout)
        except TimeoutError:
            raise AckTimeout(
                f"{device_id} did not acknowledge {body.kind} within {timeout:g} s",
                hint="the cluster may be offline: see `speakerctl devices show`",
            ) from None
        finally:
            self.ingestor.forget_ack(command.msg_id)
        rtt = (self.clock.monotonic() - sent) * 1000
        # The device stamped its ack about half a round trip after we sent the command.
        offset = ack.ts_ms - (to_ms(now) + rtt / 2)
        return ManageResult(device_id, ack.ok, ack.detail, rtt, offset)

    async def _run(
        self,
        plan: Plan,
        command: Command,
        tracker: Tracker,
        uploads: list[Upload],
        progress: Progress | None,
        wait_s: float = 0.0,
        *,
        reissue: bool = False,
    ) -> None:
        timeout = self.settings.broadcast_timeout_s + plan.duration_ms / 1000 + wait_s
        async with asyncio.TaskGroup() as tg:
            jobs = [tg.create_task(u.run(tracker)) for u in uploads]
            await pause_at("before-publish")
            if reissue:
                tracker.issued()
                command = await self._reissued(plan.broadcast_id, command)
            for i, topic in enumerate(plan.topics):
                payload = codec.encode(self.signer.sign_for(command, topic))
                await publish_through_outages(self.link, topic, payload, timeout)
                if i == 0:
                    await pause_at("mid-publish")
            if plan.topics:
                await self._published(plan.broadcast_id)
            try:
                await _follow(tracker, timeout, progress, lambda: self._catch_up(tracker))
            finally:
                for job in jobs:
                    job.cancel()

    async def _reissued(self, broadcast_id: str, command: Command) -> Command:
        """The play stamped now, just before its publish, and that stamp stored (or, if another
        controller took the broadcast over meanwhile, the play as stored).

        Clusters estimate their clock offset as the least (arrival − issued_at) over recent commands,
        and start at start_at + that offset: every millisecond between the stamp and the publish
        (planning writes a delivery per cluster, content reads, the store's queue) makes them start
        that much late. A resumed play is rebuilt from the stored stamp, so it is stored first.
        """
        now = self.clock.now()
        issued_ms = to_ms(now)
        if issued_ms >= command.expires_at_ms:  # planning outlived the command: send it as planned
            return command
        owner = self.session.client_id
        if not await asyncio.to_thread(self.store.broadcasts.reissue, broadcast_id, owner, now):
            return command
        return replace(command, msg_id=play_command_id(broadcast_id, issued_ms), issued_at_ms=issued_ms)

    async def _published(self, broadcast_id: str) -> None:
        """Mark the play published in full, so a restarted `serve` does not send it again."""
        owner, now = self.session.client_id, self.clock.now()
        await asyncio.to_thread(self.store.broadcasts.published, broadcast_id, owner, now)

    async def _catch_up(self, tracker: Tracker) -> None:
        # What came in before the tracker was routed (a resumed session's queue) is in the store.
        await self.ingestor.flush()
        tracker.replay(await asyncio.to_thread(self.store.deliveries.of, tracker.broadcast_id))

    async def _close(self, plan: Plan, tracker: Tracker) -> None:
        await self.ingestor.flush()
        if await self._taken_from_us(plan.broadcast_id):
            return
        # Reports the tracker missed (recorded by another controller, or before it was tracked)
        # are in the store: never call a cluster unreached whose report exists.
        tracker.replay(await asyncio.to_thread(self.store.deliveries.of, plan.broadcast_id))
        tracker.mark_unreached()
        played = tracker.counts().get(FINISHED, 0)
        state = BroadcastState.COMPLETE if played == len(plan.device_ids) else BroadcastState.INCOMPLETE
        await asyncio.to_thread(self.store.deliveries.mark_unreached, plan.broadcast_id)
        await asyncio.to_thread(self.store.broadcasts.finish, plan.broadcast_id, state, self.clock.now())

    async def _taken_from_us(self, broadcast_id: str) -> bool:
        """Whether another controller took the broadcast over while our lease had lapsed: it closes it."""
        if self.fence is None:  # one controller, or a one-shot command: what it follows, it closes
            return False
        owner = (await asyncio.to_thread(self.store.broadcasts.get, broadcast_id)).owner
        if owner in ("", self.session.client_id):
            return False
        log.warning("broadcast %s was taken over by %s: leaving it to them", broadcast_id, owner)
        return True


async def _follow(
    tracker: Tracker,
    timeout: float,
    progress: Progress | None,
    catch_up: Callable[[], Awaitable[None]] | None = None,
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    total = len(tracker.devices)
    after_stop = _AfterStop(tracker, catch_up, loop.time)
    while not tracker.done.is_set() and loop.time() < deadline:
        await after_stop.check()
        tracker.changed.clear()
        if progress is not None:
            progress(tracker.counts(), total)
        # asyncio.timeout, not wait_for, which on 3.11 can swallow a cancel as the event is set.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(min(0.1, max(0.0, deadline - loop.time()))):
                await tracker.changed.wait()
        await asyncio.sleep(0.05)  # at most ~20 progress redraws a second
    if progress is not None:
        progress(tracker.counts(), total)


class _AfterStop:
    """For a while after a cluster reports a stop, reads the store now and then.

    Someone stopped the broadcast (maybe another process): the clusters that never answered the stop
    are recorded `stopped` in the store only, so read it rather than wait for them to time out.
    """

    def __init__(
        self, tracker: Tracker, catch_up: Callable[[], Awaitable[None]] | None, now: Callable[[], float]
    ) -> None:
        self.tracker, self.catch_up, self.now = tracker, catch_up, now
        self.stopped, self.last_stop, self.caught_up = 0, -STOP_CATCH_UP_FOR_S, now()

    async def check(self) -> None:
        """Read the store if a stop was seen lately and it was not read in the last second."""
        now = self.now()
        if self.tracker.stopped != self.stopped:
            self.stopped, self.last_stop = self.tracker.stopped, now
        lately = now - self.last_stop < STOP_CATCH_UP_FOR_S
        if self.catch_up is not None and lately and now - self.caught_up > STOP_CATCH_UP_S:
            self.caught_up = now
            await self.catch_up()


def _command(plan: Plan, request: BroadcastRequest, now_ms: int) -> Command:
    start = to_ms(request.start_at) if request.start_at else None
    play = Play(plan.broadcast_id, plan.variants, start, request.volume, plan.wire_title, request.on_preempt)
    return Command(
        play_command_id(plan.broadcast_id, now_ms), now_ms, to_ms(plan.expires_at), request.priority, play
    )


def _ttl_s(request: BroadcastRequest, now: datetime, default_s: int) -> int:
    if request.expires_at is None:
        return default_s
    return max(1, int((request.expires_at - now).total_seconds()))


def _wait_s(request: BroadcastRequest, now: datetime) -> float:
    return max(0.0, (request.start_at - now).total_seconds()) if request.start_at else 0.0


def new_broadcast_id(now: datetime) -> str:
    """A fresh broadcast id, e.g. bc-20261202-061500-a1b2c3 (a caller may pick it before sending)."""
    return f"bc-{now:%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"
