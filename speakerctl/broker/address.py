"""Broker addresses: `mqtt://[user[:password]@]host[:port]`, parsed and validated once."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from speakerctl.errors import ConfigError

DEFAULT_PORT = 1883


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    """Where the MQTT broker is and how to log in."""

    host: str
    port: int = DEFAULT_PORT
    username: str | None = None
    password: str | None = None

    @classmethod
    def parse(cls, url: str) -> BrokerAddress:
        """Parse `mqtt://user:pass@host:port`, or raise ConfigError saying what is wrong."""
        parts = urlsplit(url if "://" in url else f"mqtt://{url}")
        if parts.scheme != "mqtt":
            raise ConfigError(
                f"broker URL {url!r} has scheme {parts.scheme!r}",
                hint="use mqtt://host:port (TLS comes with the security work)",
            )
        try:
            port = parts.port or DEFAULT_PORT
        except ValueError as exc:
            raise ConfigError(f"broker URL {url!r} has an invalid port") from exc
        if not parts.hostname:
            raise ConfigError(f"broker URL {url!r} names no host", hint="e.g. mqtt://127.0.0.1:1883")
        user = unquote(parts.username) if parts.username else None
        password = unquote(parts.password) if parts.password else None
        return cls(parts.hostname, port, user, password)

    @property
    def url(self) -> str:
        """The URL without the password, fit for logs and messages."""
        user = f"{self.username}@" if self.username else ""
        return f"mqtt://{user}{self.host}:{self.port}"
