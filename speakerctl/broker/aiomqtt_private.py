"""The one place speakerctl reaches past aiomqtt's public API, pinned to the versions it was checked on.

aiomqtt offers no way to close a client's socket without a DISCONNECT. A power cut does that, and the
simulated reboot (`Link.drop`) must look like one to the broker, which then publishes the Will. So
this module reads paho's socket from aiomqtt's private `_client`; and there it wraps paho's
`on_message` to keep the time paho read each message (`arrival_stamps`). Everything else the link relies on
is public and documented by aiomqtt, and checked as well, because the link's guarantees rest on it:

- `Client.messages` yields every message already queued before it raises on a lost connection
  (paho acknowledged them, the broker will not send them again);
- `timeout=math.inf` on publish/subscribe/unsubscribe waits for the ack with no timer of its own
  (the link's deadline, which a lost connection cuts short, is the only one).

`tests/test_link.py::test_aiomqtt_behaves_as_the_link_relies_on` fails loudly if an aiomqtt release
changes any of this; pyproject.toml pins aiomqtt to `TESTED` until that test passes on a newer one.
"""

from __future__ import annotations

import socket

import aiomqtt
import paho.mqtt.client as mqtt

TESTED = (2, 5)
"""The aiomqtt major.minor this module was checked against (pyproject.toml: aiomqtt>=2.5.1,<2.6)."""


def raw_socket(client: aiomqtt.Client) -> socket.socket | None:
    """The TCP socket of a connected client (None if it has none)."""
    sock = client._client.socket()  # private: paho's client inside aiomqtt (see the module docstring)
    return sock if isinstance(sock, socket.socket) else None


def arrival_stamps(client: aiomqtt.Client) -> dict[int, float]:
    """From now on, when paho parsed each message `client.messages` will yield, by the id of its payload.

    By `time.monotonic`, the event loop's clock. paho stamps a message as its socket reader parses
    it, aiomqtt drops that stamp: the messages then pass through a queue and three tasks, and in a
    simulator hundreds of clusters share the loop, so by the time the link takes one out it may have
    waited there tens of ms, which a cluster timing the controller's clock must not count. Call it
    before connecting. aiomqtt's message holds paho's payload object itself, alive (so its id unique)
    until the message is taken: the taker pops the stamp with `id(message.payload)`. An empty payload
    (one shared object) gets none. `tests/test_link.py` checks it.
    """
    paho = client._client  # private: paho's client inside aiomqtt (see the module docstring)
    stamps: dict[int, float] = {}
    deliver = paho.on_message

    def on_message(inner: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        if message.payload:
            stamps[id(message.payload)] = message.timestamp
        if deliver is not None:
            deliver(inner, userdata, message)

    paho.on_message = on_message
    return stamps
