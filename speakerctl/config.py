"""Settings from a TOML file and SPEAKERCTL_* environment variables, validated once at start-up."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from speakerctl.broker.address import BrokerAddress, parse_addresses
from speakerctl.errors import ConfigError
from speakerctl.i18n import LANGUAGES, normalise

ENV_PREFIX = "SPEAKERCTL_"


_MONITORING_POSITIVE = ("heartbeat_timeout_s", "offline_alert_min", "clock_drift_ms", "health_interval_s")
_SESSION_POSITIVE = ("session_hours", "session_idle_minutes")


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything speakerctl can be told, with its defaults."""

    data_dir: Path = Path.home() / ".local" / "share" / "speakerctl"
    database_url: str = ""
    broker: str = "mqtt://127.0.0.1:1883"
    """Broker URL, or several comma-separated (a broker cluster's nodes): tried in turn on a loss."""
    inventory: str = "soc_trang"
    timezone: str = "Asia/Ho_Chi_Minh"
    command_ttl_s: int = 3600
    accept_window_s: float = 2.0
    broadcast_timeout_s: float = 120.0
    client_id: str = ""
    broker_ca: str = ""
    """CA certificate (PEM) that signed the broker's TLS certificate, for mqtts:// URLs."""
    heartbeat_timeout_s: float = 180.0
    """A device not heard from for this long counts as offline, whatever its last status said."""
    offline_alert_min: float = 10.0
    """Open an `offline` alert once a device has been offline this many minutes."""
    clock_drift_ms: int = 2000
    """Open a `clock_drift` alert when a device's |clock offset| exceeds this."""
    min_firmware: str = ""
    """Oldest acceptable firmware version, e.g. "0.1.0" (empty: no `outdated_firmware` alerts)."""
    health_interval_s: float = 30.0
    """How often `speakerctl serve` re-evaluates the alert rules."""
    schedule_horizon_h: float = 24.0
    """How far ahead the controller pushes each cluster its scheduled broadcasts (0: no pushes)."""
    schedule_lead_s: float = 10.0
    """Lead given to a broadcast fired now, so every cluster of a zone has it before its start time."""
    emergency_volume: int = 100
    quiet_hours: str = ""
    """Volume by local time of day, per zone or everywhere: "21:00-05:00=40,st-ke-sach@22:00-04:30=25"."""
    max_duration_s: float = 1800.0
    """Longest audio a bulletin may hold, once its silent ends are trimmed."""
    loudness_lufs: float = -16.0
    """Integrated loudness every bulletin is brought to (EBU R128)."""
    true_peak_dbtp: float = -2.0
    """Ceiling for the true peak of every encoding."""
    chime_file: str = ""
    """Attention chime for `--chime` (an audio file; empty: the one speakerctl generates)."""
    web_hosts: str = ""
    """Extra names the operator page answers to (comma-separated), besides the address it is bound to."""
    key_passphrase: str = field(default="", repr=False)
    """Passphrase the command-signing keys are encrypted with (best from SPEAKERCTL_KEY_PASSPHRASE)."""
    key_passphrase_file: str = ""
    """A file holding that passphrase (its first line), e.g. a systemd credential."""
    language: str = ""
    """The CLI's language, "vi" or "en" (empty: SPEAKERCTL_LANG, else the locale, else English)."""
    session_hours: float = 12.0
    """A sign-in session ends this long after sign-in, however busy (CLI and web console)."""
    session_idle_minutes: float = 120.0
    """…or once unused for this long."""

    def __post_init__(self) -> None:
        parse_addresses(self.broker)
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ConfigError(f"unknown time zone {self.timezone!r}", hint="e.g. Asia/Ho_Chi_Minh") from exc
        for name in (
            "command_ttl_s",
            "accept_window_s",
            "broadcast_timeout_s",
            *_MONITORING_POSITIVE,
            *_SESSION_POSITIVE,
        ):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")
        if not 0 <= self.emergency_volume <= 100:
            raise ConfigError(f"emergency_volume must be 0..100, got {self.emergency_volume}")
        if self.schedule_horizon_h < 0 or self.schedule_lead_s < 0:
            raise ConfigError("schedule_horizon_h and schedule_lead_s must not be negative")
        _check_audio_settings(self)
        if self.language and normalise(self.language) is None:
            raise ConfigError(
                f"unknown language {self.language!r}", hint=f"use one of {', '.join(LANGUAGES)}"
            )

    @property
    def db_url(self) -> str:
        """The database URL: the setting, or a SQLite file in the data directory."""
        return self.database_url or f"sqlite:///{self.data_dir / 'speakerctl.db'}"

    @property
    def content_dir(self) -> Path:
        """Where encoded bulletins are kept."""
        return self.data_dir / "content"

    @property
    def keys_dir(self) -> Path:
        """Where the command-signing keys and the clusters' trusted.pub live."""
        return self.data_dir / "keys"

    def signing_passphrase(self) -> bytes | None:
        """The passphrase of the signing keys: the setting, else the file's first line; None if neither."""
        if self.key_passphrase:
            return self.key_passphrase.encode("utf-8")
        if not self.key_passphrase_file:
            return None
        try:
            lines = Path(self.key_passphrase_file).expanduser().read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read key_passphrase_file {self.key_passphrase_file}: {exc}") from exc
        if not lines or not lines[0]:
            raise ConfigError(f"key_passphrase_file {self.key_passphrase_file} is empty")
        return lines[0].encode("utf-8")

    @property
    def broker_address(self) -> BrokerAddress:
        """The first (preferred) broker, with the CA setting for TLS."""
        return self.broker_addresses[0]

    @property
    def broker_addresses(self) -> tuple[BrokerAddress, ...]:
        """Every broker given, in order of preference, each with the CA setting for TLS."""
        addresses = parse_addresses(self.broker)
        if not self.broker_ca:
            return addresses
        return tuple(replace(a, ca_file=self.broker_ca) for a in addresses)

    @property
    def broker_fallbacks(self) -> tuple[BrokerAddress, ...]:
        """The brokers after the first: where a link goes when the one before fails."""
        return self.broker_addresses[1:]

    def with_overrides(self, **values: Any) -> Settings:
        """A copy with the given non-None values replaced (CLI options)."""
        return replace(self, **{k: v for k, v in values.items() if v is not None})


def _check_audio_settings(settings: Settings) -> None:
    """ConfigError unless the audio limits are usable."""
    checks = (
        ("max_duration_s", settings.max_duration_s, 1.0, 86400.0),
        ("loudness_lufs", settings.loudness_lufs, -40.0, -5.0),
        ("true_peak_dbtp", settings.true_peak_dbtp, -12.0, 0.0),
    )
    for name, value, lo, hi in checks:
        if not lo <= value <= hi:
            raise ConfigError(f"{name} must be between {lo:g} and {hi:g}, got {value}")


def _coerce(name: str, raw: Any, default: Any) -> Any:
    try:
        if isinstance(default, Path):
            return Path(str(raw)).expanduser()
        if isinstance(default, bool):
            return str(raw).lower() in ("1", "true", "yes", "on")
        if isinstance(default, int | float):
            return type(default)(raw)
        if isinstance(raw, list):  # a TOML list, e.g. broker = ["mqtt://a:1883", "mqtt://b:1883"]
            return ",".join(str(item) for item in raw)
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


def language_setting(path: Path | None, env: Mapping[str, str] | None = None) -> str | None:
    """The settings file's `language`, read early (before typer builds its help); None on any trouble.

    `load_settings` reads the file again and reports what is wrong with it.
    """
    env = os.environ if env is None else env
    path = path or (Path(env[f"{ENV_PREFIX}CONFIG"]) if f"{ENV_PREFIX}CONFIG" in env else None)
    try:
        value = _read_file(path).get("language") if path else None
    except ConfigError:
        return None
    return env.get(f"{ENV_PREFIX}LANGUAGE") or (value if isinstance(value, str) else None)
