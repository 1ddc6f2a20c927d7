"""One self-healing MQTT session: reconnect with capped jittered backoff, resubscribe, ack timeouts."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass

import aiomqtt
from paho.mqtt.reasoncodes import ReasonCode

from speakerctl.broker.address import BrokerAddress
from speakerctl.errors import AckTimeout, AuthError, LinkError

log = logging.getLogger(__name__)

NODELAY = (socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
_AUTH_CODES = {4, 5, 134, 135}
_SUBSCRIBE_BATCH = 32


@dataclass(frozen=True, slots=True)
class Incoming:
    """A message as the rest of the project sees it: no MQTT library types."""

    topic: str
    payload: bytes
    retain: bool = False


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
        self._client: aiomqtt.Client | None = None
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
            timeout=10,
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
                if fail_fast and self.connects == 0:
                    raise LinkError(
                        f"cannot reach the MQTT broker at {self.address.url}: {exc}",
                        hint="start the broker or pass --broker mqtt://HOST:PORT",
                    ) from exc
                attempt += 1
                log.warning("link to %s lost (%s); retry %d", self.address.url, exc, attempt)
                self._next_address()
            await asyncio.sleep(self._backoff.delay(max(attempt, 1)))

    def _next_address(self) -> None:
        """After a failed or lost connection, try the next of the brokers given (in turn, round)."""
        if self.address in self._addresses:  # one set from outside (a test cutting the link) stays
            at = self._addresses.index(self.address)
            self.address = self._addresses[(at + 1) % len(self._addresses)]

    async def _session(self) -> None:
        async with self._new_client() as client:
            self._client = client
            try:
                await self._resubscribe(client)
                self.connects += 1
                self.disconnected.clear()
                self.connected.set()
                if self._on_connect is not None:
                    await self._on_connect()
                try:
                    async for message in client.messages:
                        await self._dispatch(_incoming(message))
                finally:
                    await self._drain(client)
            finally:
                self.connected.clear()
                self.disconnected.set()
                self._client = None

    async def _drain(self, client: aiomqtt.Client) -> None:
        # paho acknowledged these QoS 1 messages on arrival, so the broker will not send them
        # again; aiomqtt drops its queue with the connection. Hand them on before it goes.
        queue = client._queue  # private: aiomqtt exposes only its size (len(client.messages))
        while not queue.empty():
            await self._dispatch(_incoming(queue.get_nowait()))

    async def _dispatch(self, message: Incoming) -> None:
        try:
            await self._handler(message)
        except Exception:
            # A handler bug must not take the session down with it; it is logged loudly instead.
            log.exception("handler failed on a message from %s", message.topic)

    async def _resubscribe(self, client: aiomqtt.Client) -> None:
        items = list(self._subscriptions.items())
        for i in range(0, len(items), _SUBSCRIBE_BATCH):
            await client.subscribe(items[i : i + _SUBSCRIBE_BATCH])

    async def wait_connected(self, timeout: float) -> None:
        """Wait until the session is up, or raise LinkError."""
        try:
            await asyncio.wait_for(self.connected.wait(), timeout)
        except TimeoutError:
            raise LinkError(
                f"no connection to the MQTT broker at {self.address.url} after {timeout:.0f} s",
                hint="check that the broker runs and the URL is right",
            ) from None

    async def subscribe(self, topics: Iterable[str], qos: int = 1) -> None:
        """Subscribe now if connected, and again after every reconnect; AuthError if the broker refuses."""
        new = [t for t in topics if self._subscriptions.get(t) != qos]
        for topic in new:
            self._subscriptions[topic] = qos
        client = self._client
        if client is not None and new:
            sent = client.subscribe([(t, qos) for t in new])
            granted = await self._guard(_within_session(client, sent), "subscribe")
            self._check_granted(new, granted)

    def _check_granted(self, topics: list[str], granted: object) -> None:
        codes = list(granted) if isinstance(granted, tuple | list) else []
        refused = [t for t, code in zip(topics, codes, strict=False) if _is_failure(code)]
        for topic in refused:
            self._subscriptions.pop(topic, None)
        if refused:
            raise AuthError(
                f"broker {self.address.url} refused the subscription to {', '.join(refused)}",
                hint="check the broker's ACL for this account",
            )

    async def unsubscribe(self, topics: Iterable[str]) -> None:
        """Leave topics, also those this link never subscribed (a persistent session may hold them)."""
        gone = list(dict.fromkeys(topics))
        for topic in gone:
            self._subscriptions.pop(topic, None)
        client = self._client
        if client is not None and gone:
            await self._guard(_within_session(client, client.unsubscribe(gone)), "unsubscribe")

    async def publish(
        self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False, timeout: float = 10
    ) -> None:
        """Publish, waiting for the connection and (QoS 1) the broker's ack, both within `timeout`."""
        await self.wait_connected(timeout)
        client = self._client
        if client is None:
            raise LinkError(f"connection to {self.address.url} dropped before publishing")
        sent = client.publish(topic, payload, qos, retain, timeout=timeout)
        await self._guard(_within_session(client, sent), "publish")
        self.bytes_out += len(payload)

    async def _guard(self, call: Awaitable[object], what: str) -> object:
        try:
            return await call
        except aiomqtt.MqttError as exc:
            if "timed out" in str(exc).lower():
                raise AckTimeout(f"{what} not acknowledged by {self.address.url}: {exc}") from exc
            raise LinkError(f"{what} failed on {self.address.url}: {exc}") from exc

    def wrap_handler(self, wrap: Callable[[Handler], Handler]) -> None:
        """Put a layer between the session and the handler (the simulator injects link faults there)."""
        self._handler = wrap(self._handler)

    def drop(self) -> None:
        """Kill the socket without a DISCONNECT, as a power cut would (the broker sends the Will)."""
        client = self._client
        sock = client._client.socket() if client is not None else None
        if isinstance(sock, socket.socket):
            sock.shutdown(socket.SHUT_RDWR)


def _is_failure(code: object) -> bool:
    """A SUBACK return code that refuses the subscription (0x80 in MQTT 3.1.1, >= 0x80 in 5)."""
    value = code.value if isinstance(code, ReasonCode) else code
    return isinstance(value, int) and value >= 0x80


async def _within_session(client: aiomqtt.Client, call: Awaitable[object]) -> object:
    """Await an acknowledged call, failing at once if the connection drops meanwhile."""
    # aiomqtt waits for the ack of a dropped connection until its timeout, and the next session's
    # client never resends: fail now, so a publish can be sent again at once (subscriptions are
    # renewed by the next session anyway). A handler awaiting an ack holds up the message loop,
    # which would notice the loss only after it: paho's own signal (private in aiomqtt) is watched.
    lost = client._disconnected
    task = asyncio.ensure_future(call)
    try:
        await asyncio.wait((task, lost), return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await task
    if task.cancelled():
        raise aiomqtt.MqttError("connection dropped before the broker's ack")
    return task.result()


def _incoming(message: aiomqtt.Message) -> Incoming:
    payload = message.payload
    if isinstance(payload, str):
        data = payload.encode()
    elif isinstance(payload, bytes | bytearray):
        data = bytes(payload)
    else:
        data = b"" if payload is None else str(payload).encode()
    return Incoming(str(message.topic), data, bool(message.retain))
