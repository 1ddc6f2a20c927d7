"""Settings from a TOML file and SPEAKERCTL_* environment variables, validated once at start-up."""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from speakerctl.broker.address import BrokerAddress, parse_addresses
from speakerctl.errors import ConfigError, ProtocolError
from speakerctl.i18n import LANGUAGES, _, normalise
from speakerctl.protocol.topics import ALL_STATUS, shared

ENV_PREFIX = "SPEAKERCTL_"
_CLIENT_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_NATS_SCHEMES = ("nats", "tls")


_MONITORING_POSITIVE = ("heartbeat_timeout_s", "offline_alert_min", "clock_drift_ms", "health_interval_s")
_SESSION_POSITIVE = ("session_hours", "session_idle_minutes", "cap_poll_s", "cap_repeat_min")


WEBHOOK_EVENTS = ("broadcast.finished", "cluster.offline", "alert.opened", "alert.closed")
"""What a webhook can be sent (docs/operations.md describes each body)."""


@dataclass(frozen=True, slots=True)
class ProvinceSettings:
    """One province's source information system, as a `[[province]]` table of the settings file."""

    name: str
    base_url: str
    zone: str
    """The zone (commune, or the province's root) whose clusters are reported and whose queue takes pushes."""
    username: str = ""
    password: str = field(default="", repr=False)
    password_file: str = ""
    """A file holding the password (its first line), e.g. a systemd credential."""
    profile: str = "default"
    """The field-mapping profile: a name packaged with speakerctl, or the path of a TOML file."""
    status_interval_s: float = 300.0
    airings_interval_s: float = 60.0
    inbox_interval_s: float = 60.0
    timeout_s: float = 15.0
    retry_first_s: float = 5.0
    retry_max_s: float = 600.0
    backfill_h: float = 24.0
    """How far back the first run reports airings (later runs resume where the outbox stopped)."""

    def __post_init__(self) -> None:
        _check_name("province", self.name)
        _check_url(_("province {name}: base_url").format(name=self.name), self.base_url)
        if not self.zone:
            raise ConfigError(
                _("province {name}: zone is missing").format(name=self.name), hint='e.g. zone = "st-ke-sach"'
            )
        _check_positive(_("province {name}").format(name=self.name), self, _PROVINCE_POSITIVE)

    def login_password(self) -> str:
        """The password: the setting, else the first line of `password_file`."""
        return self.password or _first_line(
            self.password_file, _("province {name}: password_file").format(name=self.name)
        )


@dataclass(frozen=True, slots=True)
class WebhookSettings:
    """One receiver of webhooks, as a `[[webhook]]` table of the settings file."""

    name: str
    url: str
    secret: str = field(default="", repr=False)
    secret_file: str = ""
    events: tuple[str, ...] = WEBHOOK_EVENTS
    timeout_s: float = 10.0
    retry_first_s: float = 5.0
    retry_max_s: float = 600.0
    backfill_h: float = 1.0

    def __post_init__(self) -> None:
        _check_name("webhook", self.name)
        _check_url(_("webhook {name}: url").format(name=self.name), self.url)
        unknown = set(self.events) - set(WEBHOOK_EVENTS)
        if unknown:
            raise ConfigError(
                _("webhook {name}: unknown events {events}").format(
                    name=self.name, events=", ".join(sorted(unknown))
                ),
                hint=_("use some of {events}").format(events=", ".join(WEBHOOK_EVENTS)),
            )
        if not (self.secret or self.secret_file):
            raise ConfigError(
                _("webhook {name}: secret is missing").format(name=self.name),
                hint=_("set secret or secret_file"),
            )
        _check_positive(
            _("webhook {name}").format(name=self.name), self, ("timeout_s", "retry_first_s", "retry_max_s")
        )

    def signing_secret(self) -> bytes:
        """The shared secret the body is signed with."""
        return (
            self.secret
            or _first_line(self.secret_file, _("webhook {name}: secret_file").format(name=self.name))
        ).encode()


@dataclass(frozen=True, slots=True)
class PublicFeedSettings:
    """The read-only feed of what aired, `[public_feed]` of the settings file."""

    enabled: bool = True
    show_authors: bool = False
    """Whether the feed names who made each bulletin (off: citizens see no operator names)."""
    items: int = 50
    max_age_s: int = 60
    """How long citizens' apps and caches may keep an answer."""

    def __post_init__(self) -> None:
        if not 1 <= self.items <= 500 or not 0 <= self.max_age_s <= 86400:
            raise ConfigError(_("public_feed: items must be 1..500 and max_age_s 0..86400"))


@dataclass(frozen=True, slots=True)
class Integrations:
    """The other systems speakerctl talks to: provinces, webhook receivers, the public feed."""

    provinces: tuple[ProvinceSettings, ...] = ()
    webhooks: tuple[WebhookSettings, ...] = ()
    public_feed: PublicFeedSettings = PublicFeedSettings()
    delivery_interval_s: float = 5.0
    """How often `serve` sends what is due in the outbox."""

    def province(self, name: str | None) -> ProvinceSettings:
        """The province called `name` (or the only one); ConfigError if there is none such."""
        found = [p for p in self.provinces if name in (None, p.name)]
        if len(found) != 1:
            names = ", ".join(p.name for p in self.provinces) or _("none configured")
            raise ConfigError(
                _("no single province {name!r} in the settings ({names})").format(
                    name=name or "", names=names
                ),
                hint=_("add a [[province]] table to the settings file, or name one with --province"),
            )
        return found[0]


_PROVINCE_POSITIVE = (
    "status_interval_s",
    "airings_interval_s",
    "inbox_interval_s",
    "timeout_s",
    "retry_first_s",
    "retry_max_s",
    "backfill_h",
)
_INTEGRATION_KEYS = ("province", "webhook", "public_feed", "delivery_interval_s")


def _check_name(what: str, name: str) -> None:
    if not name or len(name) > 40 or not name.replace("-", "").replace("_", "").isalnum():
        raise ConfigError(
            _("{what} name {name!r} must be 1-40 letters, digits, - or _").format(what=what, name=name),
            hint='e.g. "soc-trang"',
        )


def _check_url(what: str, url: str) -> None:
    if not url.startswith(("http://", "https://")):
        raise ConfigError(
            _("{what} {url!r} is not an http(s) URL").format(what=what, url=url),
            hint="e.g. https://nguon.soctrang.gov.vn",
        )


def _check_positive(what: str, values: object, names: tuple[str, ...]) -> None:
    for name in names:
        if getattr(values, name) <= 0:
            raise ConfigError(
                _("{what}: {name} must be positive, got {value}").format(
                    what=what, name=name, value=getattr(values, name)
                )
            )


def _first_line(path: str, what: str) -> str:
    try:
        lines = Path(path).expanduser().read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            _("cannot read {what} {path}: {error}").format(what=what, path=path, error=exc)
        ) from exc
    if not lines or not lines[0]:
        raise ConfigError(_("{what} {path} is empty").format(what=what, path=path))
    return lines[0]


def parse_integrations(values: Mapping[str, Any]) -> Integrations:
    """The integration tables of the settings file; ConfigError naming the bad table or key."""
    try:
        provinces = tuple(ProvinceSettings(**_table(t, "province")) for t in _tables(values, "province"))
        webhooks = tuple(_webhook(_table(t, "webhook")) for t in _tables(values, "webhook"))
        feed = PublicFeedSettings(**_table(values.get("public_feed", {}), "public_feed"))
        interval = float(values.get("delivery_interval_s", 5.0))
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            _("integration settings: {error}").format(error=exc),
            hint=_("see docs/operations.md, Integrations"),
        ) from exc
    if len({p.name for p in provinces}) < len(provinces) or len({w.name for w in webhooks}) < len(webhooks):
        raise ConfigError(_("two [[province]] or [[webhook]] tables share a name"))
    if interval <= 0:
        raise ConfigError(_("delivery_interval_s must be positive, got {value}").format(value=interval))
    return Integrations(provinces, webhooks, feed, interval)


def _tables(values: Mapping[str, Any], key: str) -> list[Any]:
    found = values.get(key, [])
    if not isinstance(found, list):
        raise ConfigError(
            _("{key} must be an array of tables").format(key=key),
            hint=_("write [[{key}]], not [{key}]").format(key=key),
        )
    return found


def _table(value: Any, key: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(_("[{key}] must be a table").format(key=key))
    return value


def _webhook(table: dict[str, Any]) -> WebhookSettings:
    if "events" in table:
        table = table | {"events": tuple(table["events"])}
    return WebhookSettings(**table)


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
    clock_ping_s: float = 600.0
    """How often `serve` (its leader, with several controllers) pings every online cluster, so that
    its clock offset estimate does not hang on where it comes in a zone's fan-out (0: never)."""
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
    integrations: Integrations = Integrations()
    """The provinces, webhook receivers and public feed of the settings file (not from the environment)."""
    cap_feed_url: str = ""
    """Atom or RSS index of CAP 1.2 alerts that `serve` polls (empty: alerts arrive only by POST/import)."""
    cap_poll_s: float = 60.0
    """How often `serve` polls the CAP feed."""
    cap_repeat_min: float = 15.0
    """An emergency CAP alert airs again this often until it expires."""
    cap_rules: str = ""
    """TOML rule table: CAP severity/urgency/certainty/risk level → priority, geocodes → zones
    (empty: the packaged default, speakerctl/cap/rules.toml)."""
    cap_test_zone: str = ""
    """Zone where CAP Test/Exercise alerts air once at normal priority (empty: recorded as a rehearsal)."""
    cap_voice: str = "vi"
    """Voice CAP alerts are read in (vi, vi-vn-x-south, vi-vn-x-central)."""
    controller_id: str = ""
    """This `serve` process's own name among several controllers on one database: its broker client id
    (a persistent session of its own) and its lease (empty: `<installation>-serve`)."""
    lease_ttl_s: float = 5.0
    """Several controllers: a lease not renewed for this long lapses (another takes over)."""
    lease_renew_s: float = 1.5
    """…and each controller renews its leases this often (at most half the TTL)."""
    shared_group: str = ""
    """MQTT shared-subscription group for status ingestion (e.g. "speakerctl"; empty: not shared)."""
    ingest_nats: str = ""
    """NATS client URLs of a NATS broker cluster, comma-separated: statuses are ingested through its
    JetStream work queue, shared between controllers, instead of an MQTT subscription (empty: MQTT)."""
    content_root: str = ""
    """Where encoded bulletins are kept (empty: data_dir/content); one shared directory for several
    controllers."""

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
        if self.schedule_horizon_h < 0 or self.schedule_lead_s < 0 or self.clock_ping_s < 0:
            raise ConfigError("schedule_horizon_h, schedule_lead_s and clock_ping_s must not be negative")
        _check_audio_settings(self)
        _check_cluster_settings(self)
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
        return Path(self.content_root).expanduser() if self.content_root else self.data_dir / "content"

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
    def ingest_nats_urls(self) -> tuple[str, ...]:
        """The NATS client URLs statuses are ingested through; () when they come over MQTT."""
        return parse_nats_urls(self.ingest_nats)

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


def _check_cluster_settings(settings: Settings) -> None:
    """ConfigError unless the settings of several controllers are usable."""
    if settings.controller_id and not _CLIENT_ID.fullmatch(settings.controller_id):
        raise ConfigError(
            f"controller_id {settings.controller_id!r} is not a usable id",
            hint="1-64 letters, digits, '.', '-' or '_', unique per controller, e.g. ctl-hanoi-1",
        )
    if not 0 < settings.lease_renew_s * 2 <= settings.lease_ttl_s:
        raise ConfigError(
            f"lease_renew_s ({settings.lease_renew_s:g}) must be positive and at most half of "
            f"lease_ttl_s ({settings.lease_ttl_s:g})",
            hint="e.g. lease_ttl_s = 5, lease_renew_s = 1.5",
        )
    try:
        shared(ALL_STATUS, settings.shared_group)
    except ProtocolError as exc:
        raise ConfigError(f"shared_group: {exc}", hint='e.g. shared_group = "speakerctl"') from exc
    if parse_nats_urls(settings.ingest_nats) and settings.shared_group:
        raise ConfigError(
            _("shared_group and ingest_nats both share status ingestion: set one of them"),
            hint=_("ingest_nats on a NATS broker cluster (it has no $share), shared_group on other brokers"),
        )


def parse_nats_urls(text: str) -> tuple[str, ...]:
    """Comma-separated NATS client URLs (`nats://host:4222`, `tls://…`); () for none, else ConfigError."""
    urls = tuple(part.strip() for part in text.split(",") if part.strip())
    for url in urls:
        _check_nats_url(url)
    return urls


def _check_nats_url(url: str) -> None:
    parts = urlsplit(url)
    try:
        usable = parts.scheme in _NATS_SCHEMES and bool(parts.hostname) and parts.port != 0
    except ValueError:  # urlsplit checks the port only when asked
        usable = False
    if not usable:
        message = _("ingest_nats: {url} is not a NATS client URL (nats://host:port or tls://host:port)")
        hint = _("e.g. ingest_nats = nats://n1:4222,nats://n2:4222,nats://n3:4222 (each node's client port)")
        raise ConfigError(message.format(url=url), hint=hint)


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
    integrations = parse_integrations({k: values.pop(k) for k in _INTEGRATION_KEYS if k in values})
    defaults = Settings()
    known = {f.name for f in fields(Settings)} - {"integrations"}
    for key in values:
        if key not in known:
            raise ConfigError(f"{path}: unknown setting {key!r}", hint=f"known: {', '.join(sorted(known))}")
    for name in known:
        if f"{ENV_PREFIX}{name.upper()}" in env:
            values[name] = env[f"{ENV_PREFIX}{name.upper()}"]
    coerced = {k: _coerce(k, v, getattr(defaults, k)) for k, v in values.items()}
    return Settings(**coerced, integrations=integrations)


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
