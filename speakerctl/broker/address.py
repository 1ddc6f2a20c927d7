"""Broker addresses: `mqtt[s]://[user[:password]@]host[:port][?ca=FILE]`, parsed and validated once.

Several addresses, comma-separated, are one broker cluster (or a primary and its standby) tried in
turn: the link moves to the next when a connection fails or is lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

from speakerctl.errors import ConfigError

DEFAULT_PORT = 1883
DEFAULT_TLS_PORT = 8883


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    """Where the MQTT broker is and how to log in."""

    host: str
    port: int = DEFAULT_PORT
    username: str | None = None
    password: str | None = None
    tls: bool = False
    """`mqtts://`: MQTT over TLS, the broker's certificate checked against `ca_file` (or the system CAs)."""
    ca_file: str | None = None

    @classmethod
    def parse(cls, url: str) -> BrokerAddress:
        """Parse `mqtt[s]://user:pass@host:port[?ca=FILE]`, or raise ConfigError saying what is wrong."""
        parts = urlsplit(url if "://" in url else f"mqtt://{url}")
        if parts.scheme not in ("mqtt", "mqtts"):
            raise ConfigError(
                f"broker URL {url!r} has scheme {parts.scheme!r}",
                hint="use mqtt://host:port, or mqtts://host:port for TLS",
            )
        tls = parts.scheme == "mqtts"
        ca = parse_qs(parts.query).get("ca")
        try:
            port = parts.port or (DEFAULT_TLS_PORT if tls else DEFAULT_PORT)
        except ValueError as exc:
            raise ConfigError(f"broker URL {url!r} has an invalid port") from exc
        if not parts.hostname:
            raise ConfigError(f"broker URL {url!r} names no host", hint="e.g. mqtt://127.0.0.1:1883")
        user = unquote(parts.username) if parts.username else None
        password = unquote(parts.password) if parts.password else None
        return cls(parts.hostname, port, user, password, tls, ca[-1] if ca else None)

    @property
    def url(self) -> str:
        """The URL without the password, fit for logs and messages."""
        user = f"{self.username}@" if self.username else ""
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{self.host}:{self.port}"


def parse_addresses(text: str) -> tuple[BrokerAddress, ...]:
    """Comma-separated broker URLs, in order of preference; ConfigError if none or one is wrong."""
    urls = [part.strip() for part in text.split(",") if part.strip()]
    if not urls:
        raise ConfigError("no broker URL given", hint="e.g. mqtt://127.0.0.1:1883,mqtt://127.0.0.1:1884")
    return tuple(BrokerAddress.parse(url) for url in urls)
