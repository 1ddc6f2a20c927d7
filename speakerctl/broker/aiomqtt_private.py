"""The one place speakerctl reaches past aiomqtt's public API, pinned to the versions it was checked on.

aiomqtt offers no way to close a client's socket without a DISCONNECT. A power cut does that, and the
simulated reboot (`Link.drop`) must look like one to the broker, which then publishes the Will. So
this module reads paho's socket from aiomqtt's private `_client`. Everything else the link relies on
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

TESTED = (2, 5)
"""The aiomqtt major.minor this module was checked against (pyproject.toml: aiomqtt>=2.5.1,<2.6)."""


def raw_socket(client: aiomqtt.Client) -> socket.socket | None:
    """The TCP socket of a connected client (None if it has none)."""
    sock = client._client.socket()  # private: paho's client inside aiomqtt (see the module docstring)
    return sock if isinstance(sock, socket.socket) else None
