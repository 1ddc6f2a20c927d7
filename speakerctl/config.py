"""Settings from a TOML file and SPEAKERCTL_* environment variables, validated once at start-up."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from speakerctl.broker.address import BrokerAddress
from speakerctl.errors import ConfigError

ENV_PREFIX = "SPEAKERCTL_"


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything speakerctl can be told, with its defaults."""

    data_dir: Path = Path.home() / ".local" / "share" / "speakerctl"
    database_url: str = ""
    broker: str = "mqtt://127.0.0.1:1883"
    inventory: str = "soc_trang"
    timezone: str = "Asia/Ho_Chi_Minh"
    command_ttl_s: int = 3600
    accept_window_s: float = 2.0
    broadcast_timeout_s: float = 120.0
    client_id: str = ""

    def __post_init__(self) -> None:
        BrokerAddress.parse(self.broker)
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ConfigError(f"unknown time zone {self.timezone!r}", hint="e.g. Asia/Ho_Chi_Minh") from exc
        for name in ("command_ttl_s", "accept_window_s", "broadcast_timeout_s"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")

    @property
    def db_url(self) -> str:
        """The database URL: the setting, or a SQLite file in the data directory."""
        return self.database_url or f"sqlite:///{self.data_dir / 'speakerctl.db'}"

    @property
    def content_dir(self) -> Path:
        """Where encoded bulletins are kept."""
        return self.data_dir / "content"

    @property
    def broker_address(self) -> BrokerAddress:
        """The parsed broker URL."""
        return BrokerAddress.parse(self.broker)

    def with_overrides(self, **values: Any) -> Settings:
        """A copy with the given non-None values replaced (CLI options)."""
        return replace(self, **{k: v for k, v in values.items() if v is not None})


def _coerce(name: str, raw: Any, default: Any) -> Any:
    try:
        if isinstance(default, Path):
            return Path(str(raw)).expanduser()
        if isinstance(default, bool):
            return str(raw).lower() in ("1", "true", "yes", "on")
        if isinstance(default, int | float):
            return type(default)(raw)
        return str(raw)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"setting {name} = {raw!r} is not a valid {type(default).__name__}") from exc


def load_settings(path: Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Settings from the file (if any), then the environment, which wins."""
    env = os.environ if env is None else env
    path = path or (Path(env[f"{ENV_PREFIX}CONFIG"]) if f"{ENV_PREFIX}CONFIG" in env else None)
    values: dict[str, Any] = _read_file(path) if path else {}
    defaults = Settings()
    known = {f.name for f in fields(Settings)}
    for key in values:
        if key not in known:
            raise ConfigError(f"{path}: unknown setting {key!r}", hint=f"known: {', '.join(sorted(known))}")
    for name in known:
        if f"{ENV_PREFIX}{name.upper()}" in env:
            values[name] = env[f"{ENV_PREFIX}{name.upper()}"]
    return Settings(**{k: _coerce(k, v, getattr(defaults, k)) for k, v in values.items()})


def _read_file(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {path} does not exist") from exc
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc}") from exc
    section = data.get("speakerctl", data)
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: [speakerctl] must be a table")
    return section
