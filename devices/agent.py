"""The cluster agent: the code a loudspeaker cluster runs, speaking protocol v1 over one MQTT session."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from devices.cache import ContentCache, Download
from devices.hardware import Hardware
from devices.live import LiveReceiver
from devices.player import Job, Player
from devices.replay import LatestEvents, SeenIds
from devices.schedule import OffsetEstimator
from devices.zonestate import read_zones, write_zones
from speakerctl.broker.address import BrokerAddress
from speakerctl.broker.link import Incoming, Link, Will
from speakerctl.errors import AuthError, ContentError, LinkError, ProtocolError, SignatureError
from speakerctl.logs import Throttled
from speakerctl.mailbox import Mailbox
from speakerctl.protocol import (
    Ack,
    Command,
    Configure,
    ContentRef,
    ContentRequest,
    DeliveryEvent,
    DeliveryState,
    Ping,
    Play,
    Reason,
    Reboot,
    SetVolume,
    Status,
    Stop,
    chunks,
    codec,
    topics,
)
from speakerctl.protocol.limits import (
    COMPACT_FEATURE,
    COMPACT_MINOR,
    CONFIGURE_MINOR,
    MAX_CACHED_LISTED,
    MAX_MISSING_RANGES,
    PROTOCOL_MINOR,
)
from speakerctl.protocol.live import LIVE_FEATURE, LiveEvent, LiveStart, LiveStop, live_topic
from speakerctl.protocol.messages import check_command_topic
from speakerctl.protocol.signing import TrustedKeys
from speakerctl.retry import Backoff, through_outages

log = logging.getLogger(__name__)
STATUS_DEBOUNCE_S = 0.5
SEEN_IDS_FILE = "seen-ids.txt"
LATEST_EVENTS_FILE = "latest-events.txt"
_OUTBOX_BACKOFF = Backoff(deadline_s=None, first_s=0.1, max_s=2.0)
REFUSED_DETAIL = "the broker refused the content subscription"


@dataclass(frozen=True, slots=True)
class AgentConfig:
    """A cluster's identity and tuning."""

    device_id: str
    zones: tuple[str, ...]
    cache_dir: Path
    model: str = "generic"
    firmware: str = "speakerctl-agent 0.1.0"
    heartbeat_s: float = 60.0
    repair_after_s: float = 2.0
    content_timeout_s: float = 300.0
    refused_patience_s: float = 60.0
    """How long a refused content subscription is retried (a clustered broker refuses while it
    elects leaders after losing a node) before the broadcasts waiting for it are failed. 30 s was
    too short once: a NATS node killed during the test suite, both cores busy, refused for longer."""
    trusted_keys: TrustedKeys = field(default_factory=TrustedKeys)
    """Public keys commands must be signed with (from provisioning); none: every command is refused."""
    require_targets: bool = True
    """Refuse untargeted (v1.0) commands; False only while a v1.0 controller is being replaced."""
    protocol_minor: int = PROTOCOL_MINOR
    """The minor revision announced in status; below CONFIGURE_MINOR (no `configure`) or COMPACT_MINOR
    (every delivery state reported) the agent acts as older firmware."""
    live: bool = True
    """Play live streams (v1.2) if the hardware has a live output; False: behave as a v1.1 cluster."""

    def __post_init__(self) -> None:
        topics.check_id(self.device_id, "device id")
        for zone in self.zones:
            topics.check_id(zone, "zone id")


@dataclass(slots=True)
class Fetch:
    """A content item being downloaded, and the jobs waiting for it."""

    download: Download
    waiting: list[tuple[Command, Play]]
    started_ms: int
    last_chunk_ms: int
    requests: int = 0
    subscribed: bool = False
    """The broker granted the content subscription: `accepted` goes out at once to a newcomer."""


class Counters:
    """What the agent rejected or repaired, for status and tests."""

    def __init__(self) -> None:
        self.malformed = 0
        self.duplicates = 0
        self.bad_chunks = 0
        self.repair_requests = 0
        self.rejected = 0
        """Commands refused for their signature: unsigned, forged or by an untrusted key."""


class DeviceAgent:
    """One cluster: subscribes to its topics, fetches content, plays it, reports back."""

    def __init__(
        self,
        config: AgentConfig,
        address: BrokerAddress,
        hardware: Hardware,
        fallbacks: Sequence[BrokerAddress] = (),
    ) -> None:
        self.config = config
        self.hw = hardware
        self.cache = ContentCache(config.cache_dir)
        self.counters = Counters()
        self.warnings = Throttled(log, lambda: hardware.clock.now_ms() / 1000)
        self.player = Player(
            hardware.output,
            hardware.amplifier,
            hardware.clock,
            self._emit_job,
            shared_loop=hardware.shared_loop,
        )
        self._fetches: dict[str, Fetch] = {}
        self.offset = OffsetEstimator()
        self._seen = SeenIds(config.cache_dir / SEEN_IDS_FILE)
        self._latest = LatestEvents(config.cache_dir / LATEST_EVENTS_FILE)
        self._unsubscribe: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        """Content subscriptions under way (each retried by the link while the broker refuses)."""
        self.zones = self._zones()
        self._status_dirty = False
        self._last_status = 0.0
        """When the last status went out, by the event loop's clock."""
        self._reboot_pending = False
        self._outbox: Mailbox[tuple[str, bytes, bool]] = Mailbox()
        self._started_ms = hardware.clock.now_ms()
        self.live = self._live_receiver()
        offline = Status(config.device_id, online=False, ts_ms=0, model=config.model)
        self.link = Link(
            address,
            self._on_message,
            client_id=config.device_id,
            will=Will(topics.device_status(config.device_id), codec.encode(offline)),
            persistent=True,
            on_connect=self._on_connect,
            fallbacks=fallbacks,
        )

    def _live_receiver(self) -> LiveReceiver | None:
        if not self.config.live or self.hw.live is None:
            return None
        return LiveReceiver(
            self.config.device_id,
            self.player,
            self.hw.live,
            self.hw.clock,
            self.offset,
            self._emit_live,
            lambda stream_id: self._unsubscribe.add(live_topic(stream_id)),
        )

    def live_streams(self) -> list[str]:
        """The live streams this cluster plays or has queued."""
        return list(self.live.streams) if self.live is not None else []

    async def run(self) -> None:
        """Run until cancelled."""
        self._fail_what_a_reboot_lost()
        await self.link.subscribe(self._command_topics())
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self.link.run())
                tg.create_task(self.player.run())
                tg.create_task(self._send_outbox())
                await self._housekeeping()  # in this task: one task fewer per cluster
        finally:
            for task in list(self._tasks):
                task.cancel()

    def _fail_what_a_reboot_lost(self) -> None:
        # Downloads and the play queue live in memory, and the commands' ids stay seen: what was
        # under way when the power went will not play. Say so now, not by silence until a timeout.
        for lost in self._latest.unfinished():
            detail = f"the cluster restarted while the broadcast was {lost.state.value}"
            self._emit(lost.broadcast_id, DeliveryState.FAILED, Reason.REBOOTED, detail)

    def _command_topics(self) -> list[str]:
        own = [topics.device_cmd(self.config.device_id)]
        return own + [topics.zone_cmd(z) for z in self.zones]

    def _zones(self) -> tuple[str, ...]:
        """The configured chain if a `configure` set one, else the provisioned one."""
        stored = read_zones(self.config.cache_dir) if self.supports_configure else None
        if stored is None:
            return self.config.zones
        # The persistent session may still hold the provisioned zones if power failed mid-configure.
        self._unsubscribe.update(topics.zone_cmd(z) for z in self.config.zones if z not in stored)
        return stored

    @property
    def compact(self) -> bool:
        """Whether this firmware answers a cached play with `playing` alone (protocol v1.3)."""
        return self.config.protocol_minor >= COMPACT_MINOR

    @property
    def supports_configure(self) -> bool:
        """Whether this firmware speaks protocol v1.2's `configure`."""
        return self.config.protocol_minor >= CONFIGURE_MINOR

    async def _on_connect(self) -> None:
        await self.link.publish(
            topics.device_status(self.config.device_id), codec.encode(self.status()), retain=True
        )

    def status(self) -> Status:
        """The status message as of now."""
        now = self.hw.clock.now_ms()
        current = self.player.current
        hashes = self.cache.hashes
        return Status(
            device_id=self.config.device_id,
            online=True,
            ts_ms=now,
            firmware=self.config.firmware,
            model=self.config.model,
            volume=self.player.volume,
            playing=current.broadcast_id if current else None,
            uptime_s=(now - self._started_ms) // 1000,
            link=self.hw.telemetry.link(),
            power=self.hw.telemetry.power(),
            amplifier=self.hw.amplifier.state,
            temperature_c=self.hw.telemetry.temperature_c(),
            storage_free_mb=self.cache.free_mb(),
            clock_offset_ms=self.hw.telemetry.clock_offset_ms(),
            protocol_minor=self.config.protocol_minor,
            cached=tuple(hashes[:MAX_CACHED_LISTED]),
            cached_count=len(hashes),
            rejected_commands=self.counters.rejected,
            features=self._features(),
        )

    def _features(self) -> tuple[str, ...]:
        live = (LIVE_FEATURE,) if self.live is not None else ()
        return live + ((COMPACT_FEATURE,) if self.compact else ())

    # -- incoming ------------------------------------------------------------------------

    async def _on_message(self, message: Incoming) -> None:
        try:
            parsed = topics.parse(message.topic)
            if parsed.channel is topics.Channel.CONTENT:
                self._on_chunk(parsed.key, message.payload)
            elif parsed.channel is topics.Channel.LIVE:
                if self.live is not None:
                    self.live.on_frame(parsed.key, message.payload)
            else:
                command = codec.decode_command(message.payload)
                if isinstance(command.body, Configure) and not self.supports_configure:
                    raise ProtocolError("unknown command kind 'configure'")  # as v1.1 firmware sees it
                if parsed.channel is topics.Channel.ZONE_CMD:
                    check_command_topic(message.topic, command.body.kind)
                await self._on_command(command, message.topic, self._arrival_ms(message))
        except ProtocolError as exc:
            self.counters.malformed += 1
            self.warnings.log(
                "malformed messages",
                message.topic,
                "%s: rejected message on %s: %s",
                self.config.device_id,
                message.topic,
                exc,
            )

    def _arrival_ms(self, message: Incoming) -> int:
        """When the message reached this cluster, by its clock (not when its handler got to run)."""
        now = self.hw.clock.now_ms()
        if message.received is None:
            return now
        waited_s = asyncio.get_running_loop().time() - message.received
        return now - max(0, round(waited_s * 1000))

    async def _on_command(self, command: Command, topic: str, arrived_ms: int | None = None) -> None:
        # The signature is checked before the id is remembered: a forged command must not
        # be able to burn the id of a genuine one.
        try:
            self.config.trusted_keys.verify_on(command, topic, require_target=self.config.require_targets)
        except SignatureError as exc:
            self._reject(command, exc)
            return
        if command.msg_id in self._seen:
            self.counters.duplicates += 1
            self._repeat_latest(command.body)
            return
        self._seen.add(command.msg_id)
        arrived = self.hw.clock.now_ms() if arrived_ms is None else arrived_ms
        self.offset.sample(command.issued_at_ms, arrived)
        body = command.body
        if isinstance(body, Configure):
            await self._configure(command, body, topic)
        elif isinstance(body, SetVolume | Reboot | Ping):
            self._manage(command, body)
        elif isinstance(body, Stop):
            await self._stop(body.broadcast_id)
        elif isinstance(body, LiveStart | LiveStop):
            await self._on_live(command, body)
        elif command.expired(self.hw.clock.now_ms()):
            self._emit(body.broadcast_id, DeliveryState.EXPIRED, Reason.EXPIRED, "arrived expired")
        else:
            await self._accept(command, body)

    async def _on_live(self, command: Command, body: LiveStart | LiveStop) -> None:
        if self.live is None:
            return  # a v1.1 cluster: the controller already reported it skipped
        if isinstance(body, LiveStop):
            self.live.stop(body.stream_id, body.last_seq)
        elif self.live.start(command, body):
            self._unsubscribe.discard(live_topic(body.stream_id))  # a pending leave must not undo this
            await self._quietly(self.link.subscribe([live_topic(body.stream_id)]))

    def _emit_live(self, event: LiveEvent) -> None:
        self._enqueue(topics.device_events(self.config.device_id), codec.encode(event))
        self._enqueue_status()

    def _repeat_latest(self, body: object) -> None:
        # A controller that restarted re-sends its play to learn what it missed while it was away;
        # the events are kept on disk, so a cluster rebooted meanwhile answers too.
        latest = self._latest.get(body.broadcast_id) if isinstance(body, Play) else None
        if latest is not None:
            self._enqueue(topics.device_events(self.config.device_id), latest)

    def _reject(self, command: Command, exc: SignatureError) -> None:
        self.counters.rejected += 1
        self._status_dirty = True  # the status's rejected_commands tells the controller
        self.warnings.log(
            "refused commands",
            command.msg_id,
            "%s: refused command %s (%s): %s",
            self.config.device_id,
            command.msg_id,
            command.body.kind,
            exc,
        )

    def _manage(self, command: Command, body: SetVolume | Reboot | Ping) -> None:
        now = self.hw.clock.now_ms()
        if command.expired(now):
            self._ack(command, ok=False, detail="expired")
            return
        if isinstance(body, SetVolume):
            self.player.volume = body.volume
            self._status_dirty = True
        self._ack(command, ok=True)
        if isinstance(body, Reboot):
            self._reboot_pending = True

    async def _configure(self, command: Command, body: Configure, topic: str) -> None:
        """Listen on the new zone chain from now on and after every restart, then acknowledge."""
        if topic != topics.device_cmd(self.config.device_id):
            self._reject(
                command, SignatureError(f"configure must come on the cluster's own topic, not {topic}")
            )
        elif command.expired(self.hw.clock.now_ms()):
            self._ack(command, ok=False, detail="expired")
        else:
            await self._listen_on(command, body.zones)

    async def _listen_on(self, command: Command, zones: tuple[str, ...]) -> None:
        new = [topics.zone_cmd(z) for z in zones]
        try:
            await self._quietly(self.link.subscribe(new))
        except AuthError as exc:
            self._ack(command, ok=False, detail=str(exc)[:200])
            return
        try:
            write_zones(self.config.cache_dir, zones)
        except OSError as exc:
            self._ack(command, ok=False, detail=f"cannot keep the zone chain: {exc}"[:200])
            return
        self._unsubscribe.update(t for t in (topics.zone_cmd(z) for z in self.zones) if t not in new)
        self.zones = zones
        self._ack(command, ok=True, detail=" > ".join(zones)[:200])

    def _ack(self, command: Command, *, ok: bool, detail: str = "") -> None:
        ack = Ack(_msg_id(), self.config.device_id, self.hw.clock.now_ms(), command.msg_id, ok, detail)
        self._enqueue(topics.device_events(self.config.device_id), codec.encode(ack))

    async def _accept(self, command: Command, play: Play) -> None:
        ref = play.variant_for(self.hw.codecs)
        if ref is None:
            codecs = ", ".join(v.codec for v in play.variants)
            detail = f"{self.config.model} plays {', '.join(self.hw.codecs)}, not {codecs}"
            self._emit(play.broadcast_id, DeliveryState.FAILED, Reason.UNSUPPORTED_CODEC, detail)
            return
        if self.cache.has(ref.sha256) and self.compact:
            # v1.3: nothing to fetch, so nothing to say until it plays (`playing` names the variant).
            # Remembered all the same, so that a reboot before then is reported (`rebooted`).
            self._emit(play.broadcast_id, DeliveryState.ACCEPTED, None, "", ref, cached=True, send=False)
            self._queue(Job(command, play, ref, self.cache.path(ref.sha256), compact=True))
            return
        if self.cache.has(ref.sha256):
            self._emit(play.broadcast_id, DeliveryState.ACCEPTED, None, "", ref, cached=True)
            self._ready(command, play, ref, self.cache.path(ref.sha256))
            return
        fetch = self._fetches.get(ref.sha256)
        if fetch is None:
            self._start_fetch(command, play, ref)
            return
        fetch.waiting.append((command, play))
        if fetch.subscribed:
            self._emit(play.broadcast_id, DeliveryState.ACCEPTED, None, "", ref, cached=False)

    def _start_fetch(self, command: Command, play: Play, ref: ContentRef) -> None:
        try:
            download = self.cache.begin(ref)
        except (ContentError, OSError) as exc:
            self._emit(play.broadcast_id, DeliveryState.FAILED, Reason.STORAGE_FULL, str(exc)[:200])
            return
        now = self.hw.clock.now_ms()
        fetch = Fetch(download, [(command, play)], now, now)
        self._fetches[ref.sha256] = fetch
        self._unsubscribe.discard(topics.content(ref.sha256))  # a pending leave must not undo this
        # In a task: while the link retries a refused subscription, other commands still flow.
        task = asyncio.create_task(self._subscribe_content(ref, fetch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _subscribe_content(self, ref: ContentRef, fetch: Fetch) -> None:
        patience = self.config.refused_patience_s
        try:
            await self._quietly(self.link.subscribe([topics.content(ref.sha256)], patience=patience))
        except AuthError as exc:
            # Refused for good: say so now rather than after the content timeout.
            log.warning("%s: %s", self.config.device_id, exc)
            if self._fetches.get(ref.sha256) is fetch:
                self._fail_fetch(ref.sha256, fetch, REFUSED_DETAIL)
            return
        if self._fetches.get(ref.sha256) is not fetch:
            return  # done, stopped or timed out meanwhile: that was reported already
        fetch.subscribed = True
        # Accepted goes out only once the content subscription is acknowledged, so the
        # controller may upload as soon as it hears it.
        for _, play in fetch.waiting:
            self._emit(play.broadcast_id, DeliveryState.ACCEPTED, None, "", ref, cached=False)

    def _fail_fetch(self, sha256: str, fetch: Fetch, detail: str) -> None:
        for _, waiting in fetch.waiting:
            self._emit(waiting.broadcast_id, DeliveryState.FAILED, Reason.CONTENT_TIMEOUT, detail)
        if self._fetches.get(sha256) is fetch:
            self._drop_fetch(sha256, fetch)

    def _ready(self, command: Command, play: Play, ref: ContentRef, path: Path) -> None:
        self._emit(play.broadcast_id, DeliveryState.CONTENT_READY, None, "")
        self._queue(Job(command, play, ref, path))

    def _queue(self, job: Job) -> None:
        job.start_ms = self.offset.to_device(job.play.start_at_ms)
        self.player.submit(job)

    def _on_chunk(self, sha256: str, frame: bytes) -> None:
        fetch = self._fetches.get(sha256)
        if fetch is None:
            # A repair we no longer need, or a subscription our persistent session kept across a
            # reboot: the broker would send this item's chunks for ever, so leave its topic.
            self._outbox_unsubscribe(sha256)
            return
        try:
            fetch.download.write(chunks.unpack(frame))
        except (ProtocolError, ContentError) as exc:
            self.counters.bad_chunks += 1
            log.info("%s: dropped a chunk of %s: %s", self.config.device_id, sha256[:12], exc)
            return
        fetch.last_chunk_ms = self.hw.clock.now_ms()
        if fetch.download.complete:
            self._complete(sha256, fetch)

    def _complete(self, sha256: str, fetch: Fetch) -> None:
        del self._fetches[sha256]
        self._outbox_unsubscribe(sha256)
        try:
            path = self.cache.finish(fetch.download)
        except ContentError as exc:
            for _, play in fetch.waiting:
                self._emit(play.broadcast_id, DeliveryState.FAILED, Reason.CONTENT_INVALID, str(exc))
            return
        for command, play in fetch.waiting:
            self._ready(command, play, fetch.download.ref, path)

    def _outbox_unsubscribe(self, sha256: str) -> None:
        # Unsubscribing awaits the broker; the fetch watcher does it so no handler blocks on it.
        self._unsubscribe.add(topics.content(sha256))

    async def _stop(self, broadcast_id: str) -> None:
        for sha, fetch in list(self._fetches.items()):
            keep = [(c, p) for c, p in fetch.waiting if p.broadcast_id != broadcast_id]
            if len(keep) != len(fetch.waiting):
                self._emit(broadcast_id, DeliveryState.FAILED, Reason.STOPPED, "stopped while fetching")
                fetch.waiting = keep
                if not keep:
                    self._drop_fetch(sha, fetch)
                return
        self.player.stop(broadcast_id)

    def _drop_fetch(self, sha256: str, fetch: Fetch) -> None:
        del self._fetches[sha256]
        self.cache.abandon(fetch.download)
        self._outbox_unsubscribe(sha256)

    # -- repairs -------------------------------------------------------------------------

    async def _housekeeping(self) -> None:
        """The status heartbeat (every STATUS_DEBOUNCE_S) and the fetch watcher (every quarter of
        `repair_after_s`), each on its own period, in one task: a simulator runs thousands of clusters,
        and a task with its timer is a kilobyte and a wake-up each."""
        loop = asyncio.get_running_loop()
        periods = (STATUS_DEBOUNCE_S, self.config.repair_after_s / 4)
        due = [loop.time() + period for period in periods]
        while True:
            await asyncio.sleep(max(0.0, min(due) - loop.time()))
            if loop.time() >= due[0]:
                self._heartbeat(loop.time())
                due[0] = loop.time() + periods[0]
            if loop.time() >= due[1]:
                await self._watch_fetches()
                due[1] = loop.time() + periods[1]

    async def _watch_fetches(self) -> None:
        now = self.hw.clock.now_ms()
        for sha, fetch in list(self._fetches.items()):
            await self._check_fetch(sha, fetch, now)
        if self._unsubscribe and self.link.connected.is_set():
            done, self._unsubscribe = self._unsubscribe, set()
            await self._quietly(self.link.unsubscribe(done))

    def _reboot(self) -> None:
        """Restart the receiver: the session dies (the broker sends the Will), then comes back."""
        self._reboot_pending = False
        self._started_ms = self.hw.clock.now_ms()
        self.link.drop()

    async def _quietly(self, call: Awaitable[None]) -> None:
        """Await a broker call; a lost link is logged (the call is redone on reconnect), a refusal raised."""
        try:
            await call
        except AuthError:
            raise
        except LinkError as exc:
            log.info("%s: %s", self.config.device_id, exc)

    async def _check_fetch(self, sha256: str, fetch: Fetch, now: int) -> None:
        expired = all(c.expired(now) for c, _ in fetch.waiting)
        timed_out = now - fetch.started_ms > self.config.content_timeout_s * 1000
        if expired or timed_out:
            reason = Reason.EXPIRED if expired else Reason.CONTENT_TIMEOUT
            state = DeliveryState.EXPIRED if expired else DeliveryState.FAILED
            for _, play in fetch.waiting:
                self._emit(play.broadcast_id, state, reason, "content did not arrive in time")
            self._drop_fetch(sha256, fetch)
            return
        backoff = self.config.repair_after_s * 1000 * min(2**fetch.requests, 8)
        if self.link.connected.is_set() and now - fetch.last_chunk_ms > backoff:
            await self._request_missing(sha256, fetch, now)

    async def _request_missing(self, sha256: str, fetch: Fetch, now: int) -> None:
        ranges = chunks.to_ranges(fetch.download.missing)[:MAX_MISSING_RANGES]
        request = ContentRequest(_msg_id(), self.config.device_id, now, sha256, tuple(ranges))
        fetch.requests += 1
        fetch.last_chunk_ms = now
        self.counters.repair_requests += 1
        self._enqueue(topics.device_events(self.config.device_id), codec.encode(request))

    # -- outgoing ------------------------------------------------------------------------

    def _emit_job(self, job: Job, state: DeliveryState, reason: Reason | None, detail: str) -> None:
        # `ts` is when the state was reached (protocol §5.1): for `playing`, when the sound began.
        at_ms = job.began_ms if state is DeliveryState.PLAYING else None
        if job.compact and state is DeliveryState.PLAYING:
            # The one reply of a compact play (v1.3); the status waits for the end of it.
            self._emit(job.play.broadcast_id, state, reason, detail, job.ref, cached=True, at_ms=at_ms)
            return
        self._emit(job.play.broadcast_id, state, reason, detail, at_ms=at_ms)
        if state in (DeliveryState.PLAYING, DeliveryState.FINISHED, DeliveryState.FAILED):
            self._enqueue_status()

    def _emit(
        self,
        broadcast_id: str,
        state: DeliveryState,
        reason: Reason | None,
        detail: str,
        ref: ContentRef | None = None,
        *,
        cached: bool = False,
        send: bool = True,
        at_ms: int | None = None,
    ) -> None:
        event = DeliveryEvent(
            _msg_id(),
            self.config.device_id,
            self.hw.clock.now_ms() if at_ms is None else at_ms,
            broadcast_id,
            state,
            reason,
            detail[:200],
            cached,
            ref.sha256 if ref else None,
        )
        payload = codec.encode(event)
        self._latest.put(broadcast_id, payload)
        if send:
            self._enqueue(topics.device_events(self.config.device_id), payload)

    def _enqueue_status(self) -> None:
        # Debounced: a burst of changes (playing, then finished) becomes one status message.
        self._status_dirty = True

    def _enqueue(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        self._outbox.put_nowait((topic, payload, retain))

    async def _send_outbox(self) -> None:
        """Publish in order; while the link is down, events wait here rather than being lost."""
        while True:
            batch = [await self._outbox.get()]
            while not self._outbox.empty():
                batch.append(self._outbox.get_nowait())
            # Resending the whole burst is safe: the controller treats reports idempotently.
            # A cluster never gives up on its reports, so the outbox has no deadline.
            what = f"{self.config.device_id}: outbox"
            await through_outages(partial(self._publish_burst, batch), what, _OUTBOX_BACKOFF)

    async def _publish_burst(self, batch: list[tuple[str, bytes, bool]]) -> None:
        """Publish a burst on one connection (keeping order, sharing one ack round trip)."""
        if len(batch) == 1:  # the usual burst: no task to gather
            topic, payload, retain = batch[0]
            await self.link.publish(topic, payload, retain=retain, timeout=30)
            return
        # Every publish of the burst is awaited, failed or not: none is left running
        # behind a retry or a cancellation.
        results = await asyncio.gather(
            *(self.link.publish(t, p, retain=r, timeout=30) for t, p, r in batch),
            return_exceptions=True,
        )
        errors = [e for e in results if isinstance(e, BaseException)]
        if errors:
            raise errors[0]

    def _heartbeat(self, now: float) -> None:
        """Status on change (at most every STATUS_DEBOUNCE_S) and every heartbeat interval."""
        self.warnings.flush()
        if self._reboot_pending and self._outbox.empty():
            self._reboot()
        due = now - self._last_status >= self.config.heartbeat_s
        if (self._status_dirty or due) and self.link.connected.is_set():
            self._status_dirty, self._last_status = False, now
            payload = codec.encode(self.status())
            self._enqueue(topics.device_status(self.config.device_id), payload, retain=True)


def _msg_id() -> str:
    return secrets.token_hex(8)


def zones_for(device_zone: str, ancestors: Sequence[str]) -> tuple[str, ...]:
    """The zones a device listens on: its own and every ancestor."""
    return tuple(dict.fromkeys([device_zone, *ancestors]))
