"""One self-healing MQTT session: reconnect with capped jittered backoff, resubscribe, ack timeouts."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass
from math import inf
from typing import TypeVar

import aiomqtt
from paho.mqtt.reasoncodes import ReasonCode

from speakerctl.broker.address import BrokerAddress
from speakerctl.broker.aiomqtt_private import (
    NoQueue,
    buffered_reads,
    coalesced_writes,
    deliver_to,
    raw_socket,
)
from speakerctl.errors import AckTimeout, AuthError, LinkError
from speakerctl.mailbox import Mailbox

log = logging.getLogger(__name__)

NODELAY = (socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
_AUTH_CODES = {4, 5, 134, 135}
_SUBSCRIBE_BATCH = 32
_ACK_S = 10.0
"""How long a subscribe or unsubscribe waits for the broker's acknowledgement."""
_REFUSED_CAP_S = 4.0
"""Longest pause between retries of a refused subscription: a leader election lasts seconds, and a
caller's patience (tens of seconds) should see several tries, not one long wait."""
T = TypeVar("T")


class _LateAcks(logging.Filter):
    """aiomqtt logs a SUBACK or UNSUBACK that comes after the link stopped waiting for it (`_ACK_S`)
    as an error with a traceback ("Unexpected message ID"). The wait's end was reported already
    (AckTimeout), and the late ack changes nothing: a 10,000-cluster simulator on a busy broker
    logged 3,690 of these tracebacks. Kept as one debug line instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and record.msg.startswith("Unexpected message ID"):
            log.debug("a late acknowledgement, after the wait for it ended: %s", record.getMessage())
            return False
        return True


_MQTT_LOG = logging.getLogger(f"{__name__}.mqtt")
"""aiomqtt's and paho's logger for every link (aiomqtt's own default is the global `mqtt`)."""
_MQTT_LOG.addFilter(_LateAcks())


@dataclass(frozen=True, slots=True)
class Incoming:
    """A message as the rest of the project sees it: no MQTT library types."""

    topic: str
    payload: bytes
    retain: bool = False
    received: float | None = None
    """When paho read it off the socket (`deliver_to`), by the event loop's clock; None: it is
    being handled at once.
    Hundreds of simulated clusters share one loop: a message may wait there before its handler runs,
    and a cluster timing the controller's clock must count from its arrival, not from that wait."""


@dataclass(frozen=True, slots=True)
class Will:
    """The Last Will the broker publishes if the session dies."""

    topic: str
    payload: bytes
    retain: bool = True


Handler = Callable[[Incoming], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Backoff:
    """Capped exponential backoff with full jitter."""

    first: float = 0.5
    cap: float = 30.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait before reconnect attempt `attempt` (1-based)."""
        return random.uniform(self.first / 2, min(self.cap, self.first * 2 ** (attempt - 1)))


def _is_auth_failure(exc: aiomqtt.MqttError) -> bool:
    rc = getattr(exc, "rc", None)
    value = rc.value if isinstance(rc, ReasonCode) else rc
    return value in _AUTH_CODES


class Link:
    """An MQTT session owned by one task (`run`); publish and subscribe from anywhere."""

    def __init__(
        self,
        address: BrokerAddress,
        handler: Handler,
        *,
        client_id: str | None = None,
        will: Will | None = None,
        persistent: bool = False,
        keepalive: int = 30,
        max_inflight: int = 100,
        backoff: Backoff = Backoff(),
        on_connect: Callable[[], Awaitable[None]] | None = None,
        fallbacks: Sequence[BrokerAddress] = (),
    ) -> None:
        self.address = address
        self._addresses = (address, *fallbacks)
        """Brokers tried in turn: a failed connect moves on to the next (a cluster's failover list)."""
        self._handler = handler
        self._client_id = client_id
        self._will = will
        self._persistent = persistent
        self._keepalive = keepalive
        self._max_inflight = max_inflight
        self._backoff = backoff
        self._on_connect = on_connect
        self._subscriptions: dict[str, int] = {}
        self._ungranted: set[str] = set()
        """Wanted topics the broker refused (or did not acknowledge) on this connection: retried."""
        self._suback: asyncio.Event | None = None
        """Set (and dropped) after each SUBACK handled: wakes whoever waits for a grant. Made only
        when someone waits: an Event is most of a kilobyte, and a simulator holds thousands of links."""
        self._connection: _Connection | None = None
        self.connected = asyncio.Event()
        self.disconnected = asyncio.Event()
        """Set while there is no session: the opposite of `connected`, for whoever waits for a loss."""
        self.disconnected.set()
        self.connects = 0
        self.bytes_out = 0

    def _new_client(self) -> aiomqtt.Client:
        will = self._will
        client = aiomqtt.Client(
            self.address.host,
            self.address.port,
            username=self.address.username,
            password=self.address.password,
            identifier=self._client_id,
            clean_session=not self._persistent,
            keepalive=self._keepalive,
            max_inflight_messages=self._max_inflight,
            will=aiomqtt.Will(will.topic, will.payload, 1, will.retain) if will else None,
            socket_options=[NODELAY],
            queue_type=NoQueue,  # messages go straight to the connection's inbox (_Connection)
            timeout=10,
            logger=_MQTT_LOG,
            tls_params=aiomqtt.TLSParameters(ca_certs=self.address.ca_file) if self.address.tls else None,
        )
        # aiomqtt warns past 10 concurrent publishes; a windowed chunk upload has more by design.
        client.pending_calls_threshold = 4 * self._max_inflight
        return client

    async def run(self, *, fail_fast: bool = False) -> None:
        """Hold the session until cancelled; with `fail_fast`, a first failed connect raises."""
        attempt = 0
        while True:
            try:
                await self._session()
                attempt = 0
            except aiomqtt.MqttError as exc:
                if _is_auth_failure(exc):
                    raise AuthError(
                        f"broker {self.address.url} refused the login: {exc}",
                        hint="check the username and password (or the broker's ACL)",
                    ) from exc
                # With several brokers, a first connect fails fast only once each has refused.
                if fail_fast and self.connects == 0 and attempt + 1 >= len(self._addresses):
                    raise LinkError(
                        f"cannot reach the MQTT broker at {self._tried()}: {exc}",
                        hint="start the broker or pass --broker mqtt://HOST:PORT",
                    ) from exc
                attempt += 1
                log.warning("link to %s lost (%s); retry %d", self.address.url, exc, attempt)
                self._next_address()
            await asyncio.sleep(self._backoff.delay(max(attempt, 1)))

    def _tried(self) -> str:
        return ", ".join(a.url for a in self._addresses)

    def _next_address(self) -> None:
        """After a failed or lost connection, try the next of the brokers given (in turn, round)."""
        if self.address in self._addresses:  # one set from outside (a test cutting the link) stays
            at = self._addresses.index(self.address)
            self.address = self._addresses[(at + 1) % len(self._addresses)]

    async def _session(self) -> None:
        client = self._new_client()
        connection = _Connection(client)  # before connecting: a persistent session's queue comes at once
        async with client:
            # aiomqtt waits for the CONNACK with asyncio.wait_for, which on Python 3.11 swallows a
            # cancel that comes with it: a power-cut cluster would then hold a session for ever.
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise asyncio.CancelledError
            self._connection = connection
            try:
                await self._hold(connection)
            finally:
                self.connected.clear()
                self.disconnected.set()
                self._connection = None
                self._wake_grant_waiters()  # a subscribe waiting for a grant learns of the loss
        if connection.error is not None:
            raise connection.error

    async def _hold(self, connection: _Connection) -> None:
        """Read, resubscribe, announce, and hand messages on until the connection is lost."""
        async with asyncio.TaskGroup() as tg:
            # The watcher never waits on a handler, so a loss is seen at once even while a
            # handler awaits an ack (which then fails instead of waiting out its timeout).
            tg.create_task(connection.watch())
            connection.group = tg  # for the retrier, started by the first refusal (most links see none)
            try:
                await self._resubscribe(connection)
                self.connects += 1
                self.disconnected.clear()
                self.connected.set()
                if self._on_connect is not None:
                    await self._on_connect()
            except AckTimeout as exc:
                # A slow broker, not a lost one: paho keeps the message in flight and still sends
                # it, so the session carries on (a simulator of 10,000 clusters lost one whole
                # process to this on a loaded machine).
                if not connection.lost:
                    log.warning("link to %s: on connecting, %s; carrying on", self.address.url, exc)
            except LinkError:
                if not connection.lost:
                    raise
            await self._dispatch_all(connection.inbox)
            if connection.retrier is not None:
                connection.retrier.cancel()

    async def _dispatch_all(self, inbox: Mailbox[Incoming | None]) -> None:
        # Everything paho acknowledged is handed on, also what arrived just before a loss: the
        # broker will not send it again. The reader's None says the connection is gone.
        while (message := await inbox.get()) is not None:
            await self._dispatch(message)

    async def _dispatch(self, message: Incoming) -> None:
        try:
            await self._handler(message)
        except Exception:
            # A handler bug must not take the session down with it; it is logged loudly instead.
            log.exception("handler failed on a message from %s", message.topic)

    async def _resubscribe(self, connection: _Connection) -> None:
        self._ungranted.clear()
        items = list(self._subscriptions.items())
        for i in range(0, len(items), _SUBSCRIBE_BATCH):
            with contextlib.suppress(AckTimeout):  # noted: the retrier sends it again
                await self._send_subscribe(connection, items[i : i + _SUBSCRIBE_BATCH])

    async def _send_subscribe(self, connection: _Connection, items: list[tuple[str, int]]) -> None:
        """One SUBSCRIBE; what the broker refuses or leaves unacknowledged is left to the retrier.

        A clustered broker refuses transiently: NATS answers 0x80 while JetStream re-elects its
        leaders after a node is lost. A refusal that lasts is the caller's to judge (`patience`).
        """
        topics = [t for t, _ in items]
        sent = connection.client.subscribe(items, timeout=inf)
        try:
            granted = await self._guard(connection.call(sent, _ACK_S), "subscribe")
        except AckTimeout:
            self._note_ungranted(topics)
            raise
        codes = list(granted) if isinstance(granted, tuple | list) else []
        refused = [t for t, code in zip(topics, codes, strict=False) if _is_failure(code)]
        self._ungranted.difference_update(topics)
        self._note_ungranted(refused)

    def _note_ungranted(self, topics: list[str]) -> None:
        refused = [t for t in topics if t in self._subscriptions]
        self._ungranted.update(refused)
        if refused:
            log.info("broker %s refused %s; retrying", self.address.url, ", ".join(refused))
        if self._ungranted:
            self._start_retrier()
        self._wake_grant_waiters()

    def _start_retrier(self) -> None:
        """Run `_retry_ungranted` on the current connection, once: a task per link is a kilobyte, and
        the simulator holds thousands of links that are never refused."""
        connection = self._connection
        if connection is None or connection.lost or connection.group is None:
            return
        if connection.retrier is None:
            connection.retrier = connection.group.create_task(self._retry_ungranted(connection))

    def _wake_grant_waiters(self) -> None:
        if self._suback is not None:
            self._suback.set()
            self._suback = None

    def _next_suback(self) -> asyncio.Event:
        if self._suback is None:
            self._suback = asyncio.Event()
        return self._suback

    async def _retry_ungranted(self, connection: _Connection) -> None:
        """Subscribe again, with the link's capped backoff, to what this connection was refused.

        The link owns resubscription: a topic stays wanted until unsubscribed (or given up by
        `subscribe`'s caller), and a new connection subscribes to all of them anyway.
        """
        attempt = 0
        try:
            while self._ungranted:
                attempt += 1
                await self._retry_once(connection, attempt)
        except LinkError:
            return  # the connection is gone; the next one resubscribes to everything
        finally:
            # Done (nothing refused now) or gone: the next refusal starts a retrier afresh.
            if connection.retrier is asyncio.current_task():
                connection.retrier = None

    async def _retry_once(self, connection: _Connection, attempt: int) -> None:
        """One round of the retrier: a pause, then a SUBSCRIBE of everything still refused."""
        await asyncio.sleep(min(_REFUSED_CAP_S, self._backoff.delay(attempt)))
        self._ungranted &= self._subscriptions.keys()
        items = [(t, self._subscriptions[t]) for t in sorted(self._ungranted)]
        with contextlib.suppress(AckTimeout):  # still wanted and noted: tried after a longer pause
            for i in range(0, len(items), _SUBSCRIBE_BATCH):
                await self._send_subscribe(connection, items[i : i + _SUBSCRIBE_BATCH])

    async def wait_connected(self, timeout: float) -> None:
        """Wait until the session is up, or raise LinkError."""
        if self.connected.is_set():  # the common case, without a task and a timer per call
            return
        try:
            async with asyncio.timeout(timeout):  # not wait_for: it can swallow a cancel on 3.11
                await self.connected.wait()
        except TimeoutError:
            raise LinkError(
                f"no connection to the MQTT broker at {self.address.url} after {timeout:.0f} s",
                hint="check that the broker runs and the URL is right",
            ) from None

    async def subscribe(self, topics: Iterable[str], qos: int = 1, *, patience: float = 0.0) -> None:
        """Subscribe now if connected, and again after every reconnect.

        A refused subscription is retried with the link's backoff for up to `patience` seconds
        (a clustered broker refuses while it elects leaders); refused still after that, the
        topics are given up and AuthError raised. A lost connection raises LinkError, the topics
        staying wanted (the next connection subscribes to them).
        """
        new = [t for t in topics if self._subscriptions.get(t) != qos]
        for topic in new:
            self._subscriptions[topic] = qos
        connection = self._connection
        if connection is None or not new:
            return
        try:
            await self._send_subscribe(connection, [(t, qos) for t in new])
        except AckTimeout:
            if patience <= 0:
                raise
        refused = await self._await_grants(new, patience)
        if refused:
            for topic in refused:
                self._subscriptions.pop(topic, None)
            self._ungranted.difference_update(refused)
            raise AuthError(
                f"broker {self.address.url} refused the subscription to {', '.join(refused)}",
                hint="check the broker's ACL for this account",
            )

    async def _await_grants(self, topics: list[str], patience: float) -> list[str]:
        """The topics still refused after up to `patience` seconds of the retrier's work."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + patience
        while refused := [t for t in topics if t in self._ungranted]:
            connection, suback = self._connection, self._next_suback()
            if connection is None or connection.lost:
                raise LinkError(f"subscribe to {', '.join(refused)} cut by a lost connection")
            left = deadline - loop.time()
            if left <= 0:
                return refused
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(left):
                    await suback.wait()
        return []

    async def unsubscribe(self, topics: Iterable[str]) -> None:
        """Leave topics, also those this link never subscribed (a persistent session may hold them)."""
        gone = list(dict.fromkeys(topics))
        for topic in gone:
            self._subscriptions.pop(topic, None)
            self._ungranted.discard(topic)
        connection = self._connection
        if connection is not None and gone:
            sent = connection.client.unsubscribe(gone, timeout=inf)
            await self._guard(connection.call(sent, _ACK_S), "unsubscribe")

    async def publish(
        self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False, timeout: float = 10
    ) -> None:
        """Publish, waiting for the connection and (QoS 1) the broker's ack, both within `timeout`."""
        await self.wait_connected(timeout)
        connection = self._connection
        if connection is None:
            raise LinkError(f"connection to {self.address.url} dropped before publishing")
        sent = connection.client.publish(topic, payload, qos, retain, timeout=inf)
        await self._guard(connection.call(sent, timeout), "publish")
        self.bytes_out += len(payload)

    @property
    def awaiting_acks(self) -> int:
        """Calls of the current connection still waiting for the broker's acknowledgement."""
        connection = self._connection
        return connection.awaiting if connection is not None else 0

    async def _guard(self, call: Awaitable[T], what: str) -> T:
        try:
            return await call
        except _Unacknowledged as exc:
            raise AckTimeout(f"{what} not acknowledged by {self.address.url}: {exc}") from None
        except aiomqtt.MqttError as exc:
            raise LinkError(f"{what} failed on {self.address.url}: {exc}") from exc

    def wrap_handler(self, wrap: Callable[[Handler], Handler]) -> None:
        """Put a layer between the session and the handler (the simulator injects link faults there)."""
        self._handler = wrap(self._handler)

    def drop(self) -> None:
        """Kill the socket without a DISCONNECT, as a power cut would (the broker sends the Will)."""
        connection = self._connection
        sock = raw_socket(connection.client) if connection is not None else None
        if sock is not None:
            sock.shutdown(socket.SHUT_RDWR)


def _is_failure(code: object) -> bool:
    """A SUBACK return code that refuses the subscription (0x80 in MQTT 3.1.1, >= 0x80 in 5)."""
    value = code.value if isinstance(code, ReasonCode) else code
    return isinstance(value, int) and value >= 0x80


class _Unacknowledged(aiomqtt.MqttError):
    """No acknowledgement within the call's timeout, on a connection still up."""


class _Connection:
    """One broker connection: its client, its inbox, and the calls awaiting its acknowledgements.

    aiomqtt waits for the ack of a dropped connection until its timeout, and the next connection's
    client never resends: every pending call fails as soon as the watcher sees the loss, so a publish
    can be sent again at once (subscriptions are renewed by the next session anyway). A call's
    deadline is an `asyncio.timeout` the loss reschedules to now: no task or waiter per call.
    """

    def __init__(self, client: aiomqtt.Client) -> None:
        self.client = client
        self.inbox: Mailbox[Incoming | None] = Mailbox()
        """Messages as paho reads them, then None once the connection is lost."""
        deliver_to(client, self._arrived)
        buffered_reads(client, [NODELAY])
        coalesced_writes(client)
        self.lost = False
        self.group: asyncio.TaskGroup | None = None
        """The tasks of this connection's session."""
        self.retrier: asyncio.Task[None] | None = None
        self.error: aiomqtt.MqttError | None = None
        self._deadlines: set[asyncio.Timeout] = set()

    @property
    def awaiting(self) -> int:
        """Calls waiting for an acknowledgement."""
        return len(self._deadlines)

    def _arrived(self, topic: str, payload: bytes, retain: bool, read_at: float) -> None:
        self.inbox.put_nowait(Incoming(topic, payload, retain, read_at))

    async def watch(self) -> None:
        """Wait for the connection's loss, then end every pending call and close the inbox.

        paho hands messages to the inbox itself (`deliver_to`); aiomqtt's iterator, over an empty
        `NoQueue`, yields nothing and raises on the loss, after every message paho read (and
        acknowledged) is in the inbox.
        """
        try:
            await anext(self.client.messages)
        except aiomqtt.MqttError as exc:
            self.error = exc
        finally:
            self._lose()
            self.inbox.put_nowait(None)

    def _lose(self) -> None:
        self.lost = True
        now = asyncio.get_running_loop().time()
        for deadline in self._deadlines:
            if not deadline.expired():  # one that fired already is on its way out
                deadline.reschedule(now)

    async def call(self, sent: Coroutine[object, object, T], timeout: float) -> T:
        """Await an acknowledged call within `timeout`, failing at once if the connection is lost."""
        if self.lost:
            sent.close()
            raise aiomqtt.MqttError("connection dropped before the call")
        try:
            async with asyncio.timeout(timeout) as deadline:
                self._deadlines.add(deadline)
                try:
                    return await sent
                finally:
                    self._deadlines.discard(deadline)
        except TimeoutError:
            if self.lost:
                raise aiomqtt.MqttError("connection dropped before the broker's ack") from None
            raise _Unacknowledged(f"no acknowledgement within {timeout:g} s") from None
