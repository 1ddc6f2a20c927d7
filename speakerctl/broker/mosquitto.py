"""Mosquitto as a child process we own: config, password and ACL files written into one directory.

    with MosquittoProcess(MosquittoConfig(port=free_port()), tmp_dir) as broker:
        ...  # broker.url == "mqtt://127.0.0.1:PORT"

Mosquitto runs in the foreground (not daemonised), so we hold its PID; `stop()` terminates it
and waits. Everything it needs or writes (conf, passwords, ACL, log) lives in that directory.
"""

from __future__ import annotations

import base64
import hashlib
import os
import pwd
import secrets
import shutil
import subprocess
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from speakerctl.broker.ports import LOOPBACK, accepts_connections, wait_until_listening
from speakerctl.broker.process import OwnedProcess, terminate
from speakerctl.errors import BrokerError, ConfigError
from speakerctl.files import PRIVATE, PUBLIC, write_atomic

CONF_NAME = "mosquitto.conf"
PASSWORD_NAME = "passwd"
ACL_NAME = "acl"
TRUSTED_PASSWORD_NAME = "passwd-controller"
TRUSTED_ACL_NAME = "acl-controller"
MOSQUITTO_USER = "mosquitto"
LOG_NAME = "mosquitto.log"
OUTPUT_NAME = "mosquitto.out"
PBKDF2_ITERATIONS = 101
"""What `mosquitto_passwd` 2.x writes: `user:$7$101$<salt b64>$<pbkdf2-sha512 b64>`."""
_SALT_BYTES = 12
_MOSQUITTO_FALLBACK = "/usr/sbin/mosquitto"
_PASSWD_FALLBACK = "/usr/bin/mosquitto_passwd"
_TAIL_LINES = 15


def find_mosquitto() -> str | None:
    """Path of the mosquitto binary, or None if it is not installed."""
    return shutil.which("mosquitto") or _executable(_MOSQUITTO_FALLBACK)


def find_mosquitto_passwd() -> str | None:
    """Path of the mosquitto_passwd tool, or None if it is not installed."""
    return shutil.which("mosquitto_passwd") or _executable(_PASSWD_FALLBACK)


def _executable(path: str) -> str | None:
    return path if os.access(path, os.X_OK) else None


def hash_password(password: str, salt: bytes | None = None) -> str:
    """The Mosquitto 2.x password hash of `password` (PBKDF2-SHA512, 101 rounds)."""
    salt = secrets.token_bytes(_SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, PBKDF2_ITERATIONS)
    return f"$7${PBKDF2_ITERATIONS}${_b64(salt)}${_b64(digest)}"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def write_password_file(path: Path, users: Mapping[str, str], *, tool: str | None = None) -> None:
    """Write a hashed Mosquitto password file, with `mosquitto_passwd -U` when `tool` is given.

    `-U` hashes a plain `user:password` file in place, so no password appears in a command line;
    without the tool (or if it fails) the same format is computed here.
    """
    _write_private(path, "".join(f"{user}:{password}\n" for user, password in users.items()))
    if tool is not None:
        done = subprocess.run([tool, "-U", str(path)], capture_output=True, check=False)
        if done.returncode == 0:
            return
    lines = (f"{user}:{hash_password(password)}\n" for user, password in users.items())
    _write_private(path, "".join(lines))


def _write_private(path: Path, text: str) -> None:
    """Write `text` to a file only its owner can read."""
    write_atomic(path, text, mode=PRIVATE)


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """A TLS listener's CA, certificate and key (PEM paths)."""

    cafile: Path
    certfile: Path
    keyfile: Path

    def lines(self) -> list[str]:
        """The listener's mosquitto.conf lines."""
        return [f"cafile {self.cafile}", f"certfile {self.certfile}", f"keyfile {self.keyfile}"]


@dataclass(frozen=True, slots=True)
class TrustedListener:
    """A second listener for trusted accounts (the controller), which keep the client ids they choose.

    With it, authentication is per listener (`per_listener_settings true`): only `users` log in
    here, and only the other accounts on the main listener.
    """

    port: int
    users: frozenset[str]
    host: str = LOOPBACK
    acl: Sequence[str] = ()
    """Lines of this listener's acl_file; none, no acl_file."""


@dataclass(frozen=True, slots=True)
class MosquittoConfig:
    """One loopback listener and its access rules; `write()` renders them into a directory."""

    port: int
    host: str = LOOPBACK
    allow_anonymous: bool = True
    users: Mapping[str, str] = field(default_factory=dict)
    """user -> password; if any, a hashed password_file is written."""
    password_hashes: Mapping[str, str] = field(default_factory=dict)
    """user -> an already hashed password (`$7$...`), written as is: no plaintext needed."""
    tls: TlsFiles | None = None
    """With these, every listener speaks MQTT over TLS only."""
    persistence: bool = False
    """Keep sessions, subscriptions and queued messages across a broker restart (in `directory`)."""
    acl: Sequence[str] = ()
    """Lines of the acl_file, e.g. `user alice` then `topic write pa/v1/#`; none, no acl_file."""
    clientid_is_username: bool = False
    """`use_username_as_clientid` on the main listener: no client can take another's session."""
    max_payload: int = 0
    """`message_size_limit`: larger publishes are dropped (0: only MQTT's own limit)."""
    run_as: str | None = None
    """The account Mosquitto drops to when started as root; None: the user writing the config."""
    trusted: TrustedListener | None = None
    extra: Sequence[str] = ()
    """Further global mosquitto.conf lines, e.g. `max_queued_messages 10000`."""

    def __post_init__(self) -> None:
        """Reject values that would break or inject lines into the files."""
        for port in (self.port, *([self.trusted.port] if self.trusted else [])):
            if not 0 < port < 65536:
                raise ConfigError(f"mosquitto port must be 1..65535, got {port}")
        for user in (*self.users, *self.password_hashes, *([self.run_as] if self.run_as else [])):
            if not user or ":" in user or not user.isprintable() or " " in user:
                raise ConfigError(f"mosquitto user name {user!r} is empty or holds ':' or a space")
        if self.run_as == "root":
            raise ConfigError("mosquitto must not run as root", hint="give another account")
        trusted_acl = self.trusted.acl if self.trusted else ()
        secrets_ = (*self.users.values(), *self.password_hashes.values())
        for line in (*secrets_, *self.acl, *trusted_acl, *self.extra):
            if "\n" in line or "\r" in line:
                raise ConfigError(f"mosquitto config value {line!r} spans lines")

    def render(self, directory: Path) -> str:
        """The text of mosquitto.conf for files kept in `directory`."""
        lines = [*self._global_lines(directory), *self._main_listener(directory)]
        if self.trusted is not None:
            lines += self._trusted_listener(self.trusted, directory)
        return "\n".join([*lines, ""])

    def _global_lines(self, directory: Path) -> list[str]:
        return [
            *(["per_listener_settings true"] if self.trusted else []),
            "set_tcp_nodelay true",
            f"persistence {str(self.persistence).lower()}",
            *([f"persistence_location {directory}/"] if self.persistence else []),
            # A burst of a province's reports (3-4 events per cluster) must not overflow the
            # controller's queue: Mosquitto's default of 1000 drops messages silently.
            "max_queued_messages 100000",
            "max_inflight_messages 100",
            *([f"message_size_limit {self.max_payload}"] if self.max_payload else []),
            f"log_dest file {directory / LOG_NAME}",
            *(f"log_type {kind}" for kind in ("error", "warning", "notice", "information")),
            f"user {self.run_as or _invoking_user()}",
            *self.extra,
        ]

    def _main_listener(self, directory: Path) -> list[str]:
        lines = [f"listener {self.port} {self.host}"]
        if self.clientid_is_username:
            lines.append("use_username_as_clientid true")
        lines.append(f"allow_anonymous {str(self.allow_anonymous).lower()}")
        if self.tls is not None:
            lines += self.tls.lines()
        if self._accounts(trusted=False):
            lines.append(f"password_file {directory / PASSWORD_NAME}")
        if self.acl:
            lines.append(f"acl_file {directory / ACL_NAME}")
        return lines

    def _trusted_listener(self, trusted: TrustedListener, directory: Path) -> list[str]:
        lines = [f"listener {trusted.port} {trusted.host}", "allow_anonymous false"]
        if self.tls is not None:
            lines += self.tls.lines()
        lines.append(f"password_file {directory / TRUSTED_PASSWORD_NAME}")
        if trusted.acl:
            lines.append(f"acl_file {directory / TRUSTED_ACL_NAME}")
        return lines

    def _accounts(self, *, trusted: bool) -> list[str]:
        """Names of the accounts that log in on the trusted or on the main listener."""
        names = [*self.users, *self.password_hashes]
        allowed = self.trusted.users if self.trusted else frozenset()
        return [name for name in dict.fromkeys(names) if (name in allowed) == trusted]

    def write(self, directory: Path) -> Path:
        """Write mosquitto.conf and its password and ACL files into `directory`; return the conf."""
        directory.mkdir(parents=True, exist_ok=True)
        if self.trusted is not None:
            self._write_hashed(directory / PASSWORD_NAME, self._accounts(trusted=False))
            self._write_hashed(directory / TRUSTED_PASSWORD_NAME, self._accounts(trusted=True))
            if self.trusted.acl:
                _write_private(directory / TRUSTED_ACL_NAME, "\n".join([*self.trusted.acl, ""]))
        elif self.password_hashes:
            self._write_hashed(directory / PASSWORD_NAME, self._accounts(trusted=False))
        elif self.users:
            write_password_file(directory / PASSWORD_NAME, self.users, tool=find_mosquitto_passwd())
        if self.acl:
            _write_private(directory / ACL_NAME, "\n".join([*self.acl, ""]))
        conf = directory / CONF_NAME
        write_atomic(conf, self.render(directory), mode=PUBLIC)
        return conf

    def _write_hashed(self, path: Path, names: Sequence[str]) -> None:
        hashed = {**{u: hash_password(p) for u, p in self.users.items()}, **self.password_hashes}
        _write_private(path, "".join(f"{name}:{hashed[name]}\n" for name in names))


def _invoking_user() -> str:
    return pwd.getpwuid(os.geteuid()).pw_name


def broker_account(euid: int, sudo_user: str | None, exists: Callable[[str], bool]) -> str:
    """The account a generated Mosquitto config drops to: never root.

    Written by a user, the broker runs as that user (who owns the files). Written by root, it runs
    as `mosquitto` (the packages' system account), else as the user who ran sudo.
    """
    if euid != 0:
        return pwd.getpwuid(euid).pw_name
    if exists(MOSQUITTO_USER):
        return MOSQUITTO_USER
    if sudo_user and sudo_user != "root":
        return sudo_user
    raise ConfigError(
        "written as root, the broker would run as root",
        hint=f"create the system account {MOSQUITTO_USER!r} or pass --user",
    )


def account_exists(name: str) -> bool:
    """Whether the system has this user account."""
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def hand_over(directory: Path, user: str) -> None:
    """Give `directory` and its files to `user`, so the broker reads them and writes its database."""
    if os.geteuid() != 0:
        return
    entry = pwd.getpwnam(user)
    for path in (directory, *directory.iterdir()):
        os.chown(path, entry.pw_uid, entry.pw_gid)


class MosquittoProcess(OwnedProcess):
    """A Mosquitto we started and own by PID, listening on the configured loopback port."""

    def __init__(
        self,
        config: MosquittoConfig,
        directory: Path,
        *,
        binary: str | None = None,
        startup_timeout: float = 10.0,
    ) -> None:
        self.config = config
        self.directory = directory
        self._binary = binary
        self._startup_timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        """The address the listener is bound to."""
        return self.config.host

    @property
    def port(self) -> int:
        """The listener's TCP port."""
        return self.config.port

    @property
    def log_path(self) -> Path:
        """Mosquitto's own log file."""
        return self.directory / LOG_NAME

    def start(self) -> Self:
        """Write the config, start Mosquitto and wait until it accepts connections."""
        if self.is_running:
            return self
        binary = self._binary or find_mosquitto()
        if binary is None:
            raise BrokerError("mosquitto is not installed", hint="apt-get install mosquitto")
        if accepts_connections(self.host, self.port):
            raise BrokerError(f"cannot start mosquitto: {self.host}:{self.port} is already in use")
        self._process = self._spawn(binary, self.config.write(self.directory))
        if not wait_until_listening(self.host, self.port, self._startup_timeout, self._alive):
            self._fail_startup()
        return self

    def _spawn(self, binary: str, conf: Path) -> subprocess.Popen[bytes]:
        self.log_path.unlink(missing_ok=True)  # Mosquitto appends; keep only this run's log
        with (self.directory / OUTPUT_NAME).open("wb") as output:
            process = subprocess.Popen(
                [binary, "-c", str(conf)], stdin=subprocess.DEVNULL, stdout=output, stderr=output
            )
        weakref.finalize(self, terminate, process, 1.0)
        return process

    def _alive(self) -> bool:
        return self.is_running

    def _fail_startup(self) -> None:
        code = self._process.poll() if self._process is not None else None
        self.stop()
        state = f"exited with code {code}" if code is not None else "is not listening"
        raise BrokerError(
            f"mosquitto on {self.host}:{self.port} {state} after start-up:\n{self.log_tail()}",
            hint=f"see {self.log_path}",
        )

    def log_tail(self, lines: int = _TAIL_LINES) -> str:
        """The last lines of Mosquitto's log and console output."""
        texts = (_tail(self.directory / name, lines) for name in (LOG_NAME, OUTPUT_NAME))
        return "\n".join(text for text in texts if text) or "(mosquitto wrote no log)"

    def __repr__(self) -> str:
        state = f"pid {self.pid}" if self.is_running else "stopped"
        return f"<MosquittoProcess {self.url} {state}>"


def _tail(path: Path, lines: int) -> str:
    try:
        with path.open("rb") as file:
            text = file.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


__all__ = [
    "MosquittoConfig",
    "MosquittoProcess",
    "TlsFiles",
    "TrustedListener",
    "account_exists",
    "broker_account",
    "find_mosquitto",
    "find_mosquitto_passwd",
    "hand_over",
    "hash_password",
    "write_password_file",
]
