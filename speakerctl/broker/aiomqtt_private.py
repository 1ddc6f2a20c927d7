"""The one place speakerctl reaches past aiomqtt's public API, pinned to the versions it was checked on.

aiomqtt offers no way to close a client's socket without a DISCONNECT. A power cut does that, and the
simulated reboot (`Link.drop`) must look like one to the broker, which then publishes the Will. So
this module reads paho's socket from aiomqtt's private `_client`. It also takes two costs out of the
receive path, which profiling (bench/ingest.py, docs/operations.md "Ingestion at scale") found to be
most of a received message's cost, several times the decoding:

- `deliver_to`: each message goes straight to the link (topic, payload, retain flag, when it was
  read) instead of to aiomqtt's queue, whose iterator builds a task and an `asyncio.wait` per
  message; a QoS 0/1 PUBLISH is parsed here, without paho's per-message objects;
- `buffered_reads`: paho reads a packet with a `recv` for its first byte, one per byte of its length
  and one for the rest; the socket it gets serves those from 64 KiB read at once;
- `coalesced_writes`: the PUBACKs (and other packets) queued in a turn go out in one `send`.

A bare aiomqtt subscriber drains a broker's queue of 300-byte QoS 1 messages at ≈ 6,200 a second
on the machine of the last measurement, ≈ 9,600 with buffered reads, ≈ 25,000 adding `deliver_to`
and ≈ 41,600 with all three (bench/receive.py, same run; 6.7x). Everything else the link
relies on is public and documented by aiomqtt, and checked as well, because the link's guarantees
rest on it:

- `Client.messages` raises on a lost connection (then paho has handed on everything it acknowledged:
  the broker will not send it again);
- `timeout=math.inf` on publish/subscribe/unsubscribe waits for the ack with no timer of its own
  (the link's deadline, which a lost connection cuts short, is the only one).

`tests/test_link.py::test_aiomqtt_behaves_as_the_link_relies_on` fails loudly if an aiomqtt or paho
release changes any of this; pyproject.toml pins aiomqtt to `TESTED` until that test passes on a
newer one.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable, Iterable
from typing import Any

import aiomqtt
import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode

TESTED = (2, 5)
"""The aiomqtt major.minor this module was checked against (pyproject.toml: aiomqtt>=2.5.1,<2.6)."""

CHUNK = 65536
"""Bytes read from the kernel at once."""

SocketOption = tuple[int, int, int]
"""A `setsockopt` call's arguments: level, option, value."""

Sink = Callable[[str, bytes, bool, float], None]
"""Takes a received message: topic, payload, retain flag, when paho read it (`time.monotonic`)."""

log = logging.getLogger(__name__)


def raw_socket(client: aiomqtt.Client) -> socket.socket | None:
    """The TCP socket of a connected client (None if it has none)."""
    sock = client._client.socket()  # private: paho's client inside aiomqtt (see the module docstring)
    if isinstance(sock, BufferedSocket):
        sock = sock.inner
    return sock if isinstance(sock, socket.socket) else None


def deliver_to(client: aiomqtt.Client, sink: Sink) -> None:
    """From now on paho hands every message to `sink`, in the order it read them; call before connecting.

    The sink runs inside paho's read, on the event loop, before paho acknowledges the message (QoS 1):
    it must not block, and what it takes is the caller's to keep. `client.messages` then yields nothing
    but still raises when the connection is lost. The stamp is paho's clock (`time.monotonic`, the
    event loop's), taken as the packet is parsed. A message whose topic is not UTF-8 cannot be
    routed: it is logged and dropped (MQTT forbids it; Mosquitto refuses to forward one).

    A QoS 0 or 1 PUBLISH of MQTT 3.1.1 (aiomqtt's default, and the link's) is parsed here, without
    paho's per-message `MQTTMessage`, its `threading.Condition`, debug log line and callback-filter
    match (a third of paho's cost per message, profiled in bench/ingest.py); anything else (QoS 2,
    MQTT 5, manual acks, a malformed packet) goes through paho's own handling to the same sink.
    """
    paho = client._client  # private: paho's client inside aiomqtt (see the module docstring)

    def on_message(inner: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        try:
            topic = message.topic
        except UnicodeDecodeError:
            _drop(message._topic)
            return
        payload = message.payload
        sink(
            topic,
            payload if isinstance(payload, bytes) else bytes(payload),
            message.retain,
            message.timestamp,
        )

    paho.on_message = on_message
    handle = paho._handle_publish

    def handle_publish() -> MQTTErrorCode:
        header, packet = paho._in_packet["command"], paho._in_packet["packet"]
        qos = (header & 0x06) >> 1
        if qos == 2 or paho._protocol == mqtt.MQTTv5 or paho._manual_ack:
            return handle()
        topic_end = 2 + int.from_bytes(packet[:2], "big")
        body = topic_end + (2 if qos else 0)
        if topic_end == 2 or len(packet) < body:
            return handle()  # malformed: paho raises its own error
        read_at = time.monotonic()
        try:
            topic = packet[2:topic_end].decode()
        except UnicodeDecodeError:
            _drop(packet[2:topic_end])
        else:
            sink(topic, bytes(packet[body:]), bool(header & 0x01), read_at)
        if qos == 0:
            return MQTTErrorCode.MQTT_ERR_SUCCESS
        return paho._send_puback(int.from_bytes(packet[topic_end:body], "big"))

    paho._handle_publish = handle_publish  # type: ignore[method-assign]


def _drop(topic: bytes | bytearray) -> None:
    log.warning("dropped a message whose topic is not UTF-8: %r", bytes(topic[:80]))


class NoQueue(asyncio.Queue[aiomqtt.Message]):
    """aiomqtt's message queue for a client whose messages `deliver_to` hands on: it stays empty.

    Passed as aiomqtt's public `queue_type`. An asyncio.Queue holds four deques (≈ 3 KB), and a
    simulator keeps a client per cluster; this one holds nothing. `get` waits until cancelled, as
    aiomqtt's iterator does when the connection is lost.
    """

    def __init__(self, maxsize: int = 0) -> None:  # no super().__init__: nothing to hold
        self._maxsize = maxsize

    def qsize(self) -> int:
        """Always 0."""
        return 0

    def put_nowait(self, item: aiomqtt.Message) -> None:
        """Never called while `deliver_to` holds paho's on_message."""
        raise RuntimeError("NoQueue takes no message: install deliver_to before connecting")

    async def get(self) -> aiomqtt.Message:
        """Wait until cancelled."""
        await asyncio.get_running_loop().create_future()
        raise AssertionError("unreachable: the future above is never resolved")


def buffered_reads(client: aiomqtt.Client, options: Iterable[SocketOption]) -> None:
    """paho's next sockets read `CHUNK` bytes at once and serve its small reads from them.

    aiomqtt sets its `socket_options` only on a plain socket, so they are passed here again and set
    on the socket inside (without TCP_NODELAY every small message waited for the delayed ACK: the
    clusters' clock-offset estimates were 40 ms off in bench/scale.py).
    """
    paho = client._client  # private: paho's client inside aiomqtt (see the module docstring)
    create = paho._create_socket
    options = tuple(options)

    def buffered() -> Any:  # paho's SocketLike
        sock: Any = create()  # a socket.socket, or an SSLSocket for TLS
        for option in options:
            sock.setsockopt(*option)
        return BufferedSocket(sock)

    paho._create_socket = buffered  # type: ignore[method-assign]


def coalesced_writes(client: aiomqtt.Client) -> None:
    """paho writes the packets queued in a turn with one `send` rather than one each.

    Draining a queue, paho acknowledges each QoS 1 message with its own PUBACK and writes each with
    its own `send`: a system call per message, on the event loop. Before paho writes, runs of queued
    packets that need nothing once written (all but a QoS 0 PUBLISH, whose `on_publish` paho calls,
    and a DISCONNECT, after which it closes) are joined into one; paho's own partial-write handling
    then applies to the joined bytes.
    """
    paho = client._client  # private: paho's client inside aiomqtt (see the module docstring)
    write = paho._packet_write

    def coalescing() -> MQTTErrorCode:
        queue = paho._out_packet
        if len(queue) > 1:
            joined = _coalesced(queue)
            queue.clear()
            queue.extend(joined)
        return write()

    paho._packet_write = coalescing  # type: ignore[method-assign]


def _coalesced(queue: Iterable[Any]) -> list[Any]:
    out: list[Any] = []
    run: list[bytes] = []
    for packet in queue:
        command = packet["command"] & 0xF0
        if command == mqtt.DISCONNECT or (command == mqtt.PUBLISH and packet["qos"] == 0):
            _close_run(run, out)
            out.append(packet)
        else:
            run.append(bytes(packet["packet"][packet["pos"] :]))
    _close_run(run, out)
    return out


def _close_run(run: list[bytes], out: list[Any]) -> None:
    if run:
        data = b"".join(run)
        out.append({"command": mqtt.PUBACK, "mid": 0, "qos": 1, "pos": 0, "to_process": len(data),
                    "packet": data, "info": None})  # fmt: skip
        run.clear()


class BufferedSocket:
    """A socket whose `recv` serves paho's packet reads from one large read.

    aiomqtt's reader calls paho's `loop_read` again while `pending()` says bytes are waiting (meant
    for TLS, whose decrypted bytes the kernel's readiness does not show), so every whole packet
    buffered is read in the same turn. A turn takes one chunk from the kernel, no more: a packet cut
    at the chunk's end then waits for the next turn (`BlockingIOError`, paho keeps its partial
    packet), which comes because the kernel still holds the rest. So a flood of messages cannot hold
    the event loop for longer than one chunk's worth of them.
    """

    __slots__ = ("_buffer", "_may_read", "_position", "inner")

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self._buffer = b""
        self._position = 0
        self._may_read = True
        """Whether this turn may still read from the kernel (reset when a turn ends, see `pending`)."""

    def recv(self, size: int) -> bytes:
        """Up to `size` bytes: from the buffer, else from the kernel (once a turn)."""
        left = len(self._buffer) - self._position
        if left == 0:
            if not self._may_read and not self._inner_pending():
                raise BlockingIOError
            self._may_read = False
            data: bytes = self.inner.recv(max(size, CHUNK))
            if len(data) <= size:
                return data
            self._buffer, self._position = data, 0
        start, end = self._position, min(self._position + size, len(self._buffer))
        taken = self._buffer[start:end]
        if end == len(self._buffer):  # all taken: the chunk is not kept (thousands of clusters a process)
            self._buffer, end = b"", 0
        self._position = end
        return taken

    def pending(self) -> int:
        """Bytes read but not yet taken; 0 ends the reader's turn, and the next may read again."""
        left = len(self._buffer) - self._position + self._inner_pending()
        if left == 0:
            self._may_read = True
        return left

    def _inner_pending(self) -> int:
        pending = getattr(self.inner, "pending", None)  # a TLS socket's decrypted bytes
        return int(pending()) if pending is not None else 0

    def __getattr__(self, name: str) -> Any:  # send, fileno, close, setblocking: the socket's own
        return getattr(self.inner, name)
