"""Child processes a broker object owns: stopped by PID, reaped, and usable as context managers."""

from __future__ import annotations

import subprocess
from types import TracebackType
from typing import Self


def terminate(process: subprocess.Popen[bytes], timeout: float) -> None:
    """Close the child's pipes (its lifeline), SIGTERM, SIGKILL after `timeout`; always reap it."""
    for pipe in (process.stdin, process.stdout):
        if pipe is not None and not pipe.closed:
            pipe.close()
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
    process.wait()


class OwnedProcess:
    """Mixin for a broker that starts one child process and must never leave it running."""

    _process: subprocess.Popen[bytes] | None

    @property
    def host(self) -> str:
        """The address the broker listens on."""
        raise NotImplementedError

    @property
    def port(self) -> int:
        """The broker's TCP port."""
        raise NotImplementedError

    @property
    def url(self) -> str:
        """`mqtt://host:port` of the listener."""
        return f"mqtt://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        """PID of the broker process while it runs."""
        return self._process.pid if self.is_running and self._process else None

    @property
    def is_running(self) -> bool:
        """True while the child process is alive."""
        return self._process is not None and self._process.poll() is None

    def start(self) -> Self:
        """Start the child and wait until it serves."""
        raise NotImplementedError

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the child by PID and reap it; safe to call twice."""
        process, self._process = self._process, None
        if process is not None:
            terminate(process, timeout)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
