"""Loopback TCP ports for the brokers we start: pick a free one, wait until one listens."""

from __future__ import annotations

import random
import socket
import time
from collections.abc import Callable
from pathlib import Path

LOOPBACK = "127.0.0.1"
_POLL = 0.02
_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_LOWEST = 10_000


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port on `host` that nothing listens on right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def restartable_ports(count: int, host: str = LOOPBACK) -> list[int]:
    """`count` distinct free ports below the kernel's ephemeral range, for a server restarted on them.

    A port the kernel picked (`free_port`) is in that range, so once its server is killed, any
    outgoing connection on the machine may take it as its local end and the restart fails with
    "address already in use"; a port below the range is only ever taken by a listener asking for it.
    """
    below = _ephemeral_low()
    if below - _LOWEST < 100 * count:
        return [free_port(host) for _ in range(count)]
    found: dict[int, None] = {}  # distinct, in the order found
    for port in random.sample(range(_LOWEST, below), min(below - _LOWEST, 50 * count)):
        if _bindable(host, port):
            found[port] = None
            if len(found) == count:
                return list(found)
    return [free_port(host) for _ in range(count)]


def _ephemeral_low() -> int:
    try:
        return int(_EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def _bindable(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def accepts_connections(host: str, port: int, timeout: float = 0.2) -> bool:
    """True if something accepts TCP connections on `host:port`."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_until_listening(
    host: str, port: int, timeout: float, alive: Callable[[], bool] = lambda: True
) -> bool:
    """Poll until `host:port` accepts connections; False on timeout or once `alive()` is False."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and alive():
        if accepts_connections(host, port):
            return True
        time.sleep(_POLL)
    return False
