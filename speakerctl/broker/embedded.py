"""The embedded MQTT broker: amqtt, run in a child process on the loopback interface.

    with EmbeddedBroker() as broker:     # a free port on 127.0.0.1
        ...                              # broker.url == "mqtt://127.0.0.1:PORT"

Why amqtt and not iotcore (rumqttd): docs/architecture.md, "Embedded broker choice". In short,
rumqttd hands a late QoS 1 subscriber at most 100 retained messages, so a restarted controller
would see only 100 of 279 device statuses. amqtt 0.12 has two bugs of its own, fixed here in the
child by a subclass (see `_patched_broker_class`).

The child runs its own event loop (the broker never competes with the caller's loop or GIL),
reports "ready" on stdout once it listens, and exits by itself when its stdin pipe closes, which
happens on `stop()` and when the parent process dies however it dies. amqtt enforces no payload
limit (MQTT's own 256 MB applies, far above limits.BROKER_MAX_PAYLOAD) and no in-flight window,
so bursts of chunk frames are never refused; connections are capped by `max_connections`.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
import os
import selectors
import subprocess
import sys
import threading
import weakref
from collections.abc import Coroutine
from typing import Any, Final, Self

from speakerctl.broker.ports import LOOPBACK, accepts_connections, free_port
from speakerctl.broker.process import OwnedProcess, terminate
from speakerctl.errors import BrokerError

DEFAULT_MAX_CONNECTIONS: Final = 4096
"""Connections the broker accepts at once: the controller, tools and a 1000-cluster fleet."""
READY: Final = "ready"
_BOOTSTRAP: Final = "from speakerctl.broker.embedded import serve; serve()"
_ERROR_PREFIX: Final = "error: "


class EmbeddedBroker(OwnedProcess):
    """An amqtt broker in a child process we own, listening on 127.0.0.1."""

    def __init__(
        self,
        port: int | None = None,
        *,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        startup_timeout: float = 15.0,
    ) -> None:
        self._port = free_port() if port is None else port
        self._max_connections = max_connections
        self._startup_timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        """The loopback address the broker listens on."""
        return LOOPBACK

    @property
    def port(self) -> int:
        """The broker's TCP port."""
        return self._port

    def start(self) -> Self:
        """Start the broker and block until it accepts connections, or raise BrokerError."""
        if self.is_running:
            return self
        if importlib.util.find_spec("amqtt") is None:
            raise BrokerError("the embedded broker needs amqtt", hint="pip install amqtt")
        if accepts_connections(self.host, self.port):
            raise BrokerError(f"cannot start the embedded broker: port {self.port} is in use")
        self._process = self._spawn()
        problem = _await_ready(self._process, self._startup_timeout)
        if problem:
            self.stop()
            raise BrokerError(f"the embedded broker on {self.url} did not start: {problem}")
        return self

    def _spawn(self) -> subprocess.Popen[bytes]:
        options = {"port": self.port, "host": self.host, "max_connections": self._max_connections}
        process = subprocess.Popen(
            [sys.executable, "-c", _BOOTSTRAP, json.dumps(options)],
            stdin=subprocess.PIPE,  # the child exits when this pipe closes
            stdout=subprocess.PIPE,
        )
        weakref.finalize(self, terminate, process, 1.0)
        return process

    def __repr__(self) -> str:
        state = f"pid {self.pid}" if self.is_running else "stopped"
        return f"<EmbeddedBroker {self.url} {state}>"


def _await_ready(process: subprocess.Popen[bytes], timeout: float) -> str:
    """Wait for the child's first stdout line; return "" when ready, else what went wrong."""
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            return f"no sign of life within {timeout}s"
    line = process.stdout.readline().decode(errors="replace").strip()
    process.stdout.close()
    if line == READY:
        return ""
    if line.startswith(_ERROR_PREFIX):
        return line.removeprefix(_ERROR_PREFIX)
    try:
        return f"the broker process exited with code {process.wait(1.0)}"
    except subprocess.TimeoutExpired:
        return f"unexpected output {line!r}"


# ---------------------------------------------------------------- the child process
def serve() -> None:
    """Child entry point: run amqtt with the JSON options of argv[1] until stdin closes."""
    threading.Thread(target=_exit_when_parent_goes_away, daemon=True).start()
    logging.basicConfig(level=logging.WARNING, format="amqtt %(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(_run(json.loads(sys.argv[1])))
    except Exception as exc:  # reported to the parent on stdout, which raises BrokerError
        _tell_parent(f"{_ERROR_PREFIX}{exc}")
        sys.exit(1)


def _exit_when_parent_goes_away() -> None:
    try:
        sys.stdin.buffer.read()  # returns once the parent's end of the pipe closes
    finally:
        os._exit(0)


async def _run(options: dict[str, Any]) -> None:
    broker = _patched_broker_class()(_amqtt_config(options))
    await broker.start()
    _tell_parent(READY)
    await asyncio.Event().wait()


def _amqtt_config(options: dict[str, Any]) -> dict[str, Any]:
    """amqtt's configuration: one TCP listener and no plugins (no $SYS, no packet logging)."""
    listener = {
        "type": "tcp",
        "bind": f"{options['host']}:{options['port']}",
        "max_connections": options["max_connections"],
    }
    return {"listeners": {"default": listener}, "plugins": {}}


def _patched_broker_class() -> Any:
    """amqtt's Broker with two bugs of amqtt 0.12 fixed (tests/test_brokers.py pins both).

    1. On every connect amqtt sends the new client the retained messages of *every* filter anyone
       has subscribed to; only the client's own subscriptions must get them (MQTT-3.3.1-6). It
       also awaits while iterating all filters, so a subscribe elsewhere ends the connection with
       "dictionary changed size during iteration": the publishing now runs in a task of its own.
    2. Its AnonymousAuthPlugin marks sessions anonymous, and amqtt neither queues QoS 1 messages
       for nor keeps anonymous persistent sessions; we let every loopback client in without it.
    """
    from amqtt.broker import Broker  # the child alone needs it

    class PatchedBroker(Broker):  # type: ignore[misc]
        async def _authenticate(self, session: Any, listener: Any) -> bool:
            return True

        async def _publish_retained_messages_for_subscription(
            self, subscription: tuple[str, int], session: Any
        ) -> None:
            subscribers = self._subscriptions.get(subscription[0], ())
            if any(other.client_id == session.client_id for other, _qos in subscribers):
                publish = super()._publish_retained_messages_for_subscription(subscription, session)
                _in_background(publish)

    return PatchedBroker


_BACKGROUND: set[asyncio.Task[None]] = set()


def _in_background(coroutine: Coroutine[Any, Any, None]) -> None:
    """Run `coroutine` as a task the child keeps a reference to until it ends."""
    task = asyncio.create_task(coroutine)
    _BACKGROUND.add(task)
    task.add_done_callback(_BACKGROUND.discard)


def _tell_parent(line: str) -> None:
    print(line, flush=True)


__all__ = ["DEFAULT_MAX_CONNECTIONS", "EmbeddedBroker"]
