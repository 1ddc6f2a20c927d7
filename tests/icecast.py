"""A real Icecast server for relay tests: Debian's icecast2 on a free loopback port, fed by ffmpeg.

Tests that need it skip without the binary, or fail if SPEAKERCTL_REQUIRE_ICECAST=1 (CI installs it).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from waiting import wait_until_sync

from speakerctl.audio.ffmpeg import ffmpeg_exe
from speakerctl.broker.ports import free_port

REQUIRE = "SPEAKERCTL_REQUIRE_ICECAST"
PASSWORD = "nguon-thu"
_CONFIG = """<icecast>
  <location>test</location><admin>test@localhost</admin><hostname>127.0.0.1</hostname>
  <limits><clients>100</clients><sources>4</sources><source-timeout>30</source-timeout>
    <burst-on-connect>0</burst-on-connect><burst-size>0</burst-size></limits>
  <authentication><source-password>{password}</source-password>
    <admin-user>admin</admin-user><admin-password>{password}</admin-password></authentication>
  <listen-socket><port>{port}</port><bind-address>127.0.0.1</bind-address></listen-socket>
  <fileserve>1</fileserve>
  <paths><basedir>{dir}</basedir><logdir>{dir}/log</logdir><webroot>{dir}/web</webroot>
    <adminroot>/usr/share/icecast2/admin</adminroot></paths>
  <logging><errorlog>error.log</errorlog><accesslog>access.log</accesslog><loglevel>2</loglevel></logging>
  <security><chroot>0</chroot>{owner}</security>
</icecast>
"""
_OWNER = "<changeowner><user>icecast2</user><group>icecast</group></changeowner>"


def find_icecast() -> str:
    """The icecast2 binary; skip the test without it (or fail where the environment requires it)."""
    binary = shutil.which("icecast2") or shutil.which("icecast")
    if binary is None:
        reason = "icecast2 is not installed (apt-get install icecast2)"
        if os.environ.get(REQUIRE) == "1":
            pytest.fail(f"{reason}, and {REQUIRE}=1 requires it", pytrace=False)
        pytest.skip(reason)
    return binary


class Icecast:
    """A running Icecast: its base URL and the files it serves."""

    def __init__(self, port: int, directory: Path) -> None:
        self.port = port
        self.directory = directory
        self.url = f"http://127.0.0.1:{port}"

    def mount_url(self, mount: str) -> str:
        """The listener URL of a mount point."""
        return f"{self.url}/{mount}"

    def has_mount(self, mount: str) -> bool:
        """Whether a source is streaming on the mount."""
        try:
            with urllib.request.urlopen(self.mount_url(mount), timeout=2) as response:
                return bool(response.status == 200 and response.read(1))
        except (urllib.error.URLError, OSError):
            return False

    @contextmanager
    def feed(self, mount: str, seconds: float = 120.0) -> Iterator[subprocess.Popen[bytes]]:
        """ffmpeg streaming a 440 Hz tone to the mount in real time, as a station's encoder would."""
        source = f"icecast://source:{PASSWORD}@127.0.0.1:{self.port}/{mount}"
        cmd = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi",
               "-i", f"sine=f=440:d={seconds}", "-ac", "1", "-c:a", "libopus", "-b:a", "64k",
               "-content_type", "application/ogg", "-f", "ogg", source]  # fmt: skip
        feeder = subprocess.Popen(cmd, stdin=subprocess.DEVNULL)
        try:
            wait_until_sync(lambda: self.has_mount(mount), f"the Icecast mount /{mount}")
            yield feeder
        finally:
            if feeder.poll() is None:
                feeder.send_signal(signal.SIGCONT)  # a test may have paused it to make the source stall
                feeder.kill()
            feeder.wait(10)


@contextmanager
def running_icecast() -> Iterator[Icecast]:
    """Start icecast2 with a config written for this test, in a directory of its own; stop it at the end."""
    binary = find_icecast()
    with tempfile.TemporaryDirectory(prefix="speakerctl-icecast-") as name:
        directory = Path(name)
        directory.chmod(0o755)  # icecast drops to its own user, who must reach the web root
        for sub in ("log", "web"):
            (directory / sub).mkdir(mode=0o755)
        with _server(binary, directory) as icecast:
            yield icecast


@contextmanager
def _server(binary: str, directory: Path) -> Iterator[Icecast]:
    root = os.geteuid() == 0
    if root:  # icecast refuses to run as root: it changes to its own user, who must write the logs
        shutil.chown(directory / "log", "icecast2", "icecast")
    port = free_port()
    config = directory / "icecast.xml"
    owner = _OWNER if root else ""
    config.write_text(_CONFIG.format(password=PASSWORD, port=port, dir=directory, owner=owner))
    server = subprocess.Popen([binary, "-c", str(config)], stdin=subprocess.DEVNULL)
    icecast = Icecast(port, directory)
    try:
        wait_until_sync(lambda: server.poll() is not None or _listening(icecast.url), "icecast to listen")
        assert server.poll() is None, f"icecast2 exited: {(directory / 'log' / 'error.log').read_text()}"
        yield icecast
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _listening(url: str) -> bool:
    try:
        urllib.request.urlopen(url + "/nothing-here", timeout=1).close()
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, OSError):
        return False
    return True
