"""`speakerctl serve` processes for the benchmarks: started with settings in the environment, killed by PID.

Several controllers share one data directory (signing keys, content: the shared directory of
docs/architecture.md) and one PostgreSQL database; each logs to its own file.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from speakerctl.config import Settings
from speakerctl.fleet import Inventory
from speakerctl.store import Store, member_lease

NAMES = ("ctl-a", "ctl-b", "ctl-c")
START_S = 180.0
"""Safety net for a `serve` process to start on a busy machine: imports, a broker session, its lease."""
STOP_S = 30.0
POLL_S = 0.1


@dataclass
class Serves:
    """The `serve` processes, by controller id."""

    settings: Settings
    root: Path
    env: Mapping[str, str]
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    logs: dict[str, Path] = field(default_factory=dict)

    def start(self, name: str) -> None:
        """Start controller `name` (its broker client id and lease name)."""
        self.logs[name] = self.root / f"{name}-{len(self.logs)}.log"
        env = os.environ | dict(self.env) | {"SPEAKERCTL_CONTROLLER_ID": name}
        cmd = [sys.executable, "-m", "speakerctl", "--data-dir", str(self.settings.data_dir)]
        cmd += ["--broker", self.settings.broker, "--database", self.settings.database_url, "serve"]
        self.root.mkdir(parents=True, exist_ok=True)
        with self.logs[name].open("wb") as log:
            self.processes[name] = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)

    def kill(self, name: str) -> None:
        """SIGKILL, as a crash or `kill -9` would."""
        process = self.processes.pop(name)
        process.send_signal(signal.SIGKILL)
        process.wait(STOP_S)

    def pause(self) -> None:
        """SIGSTOP every process: the broker keeps their sessions and queues what arrives for them."""
        for process in self.processes.values():
            process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT every process."""
        for process in self.processes.values():
            process.send_signal(signal.SIGCONT)

    def alive(self, store: Store, name: str) -> bool:
        """Whether the controller's process runs and holds its own lease (renewed from its start)."""
        process = self.processes.get(name)
        running = process is not None and process.poll() is None
        return running and store.leases.current(member_lease(name)) is not None

    async def wait_alive(self, store: Store) -> None:
        """Wait until every started controller holds its lease."""
        for name in self.processes:
            await wait_for(lambda n=name: self.alive(store, n), f"{name} serving", START_S)  # type: ignore[misc]

    def stop_all(self) -> None:
        """SIGTERM every process, SIGKILL what does not stop."""
        for process in self.processes.values():
            process.send_signal(signal.SIGCONT)
            process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(STOP_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()


def write_inventory(inventory: Inventory, path: Path) -> Path:
    """The inventory as a file for `serve` (SPEAKERCTL_INVENTORY): else it loads the packaged 279 clusters."""
    data = {
        "format": 1,
        "name": inventory.name,
        "timezone": inventory.timezone,
        "zones": [dataclasses.asdict(z) for z in inventory.zones],
        "devices": [dataclasses.asdict(d) for d in inventory.devices],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


@contextmanager
def serves(
    settings: Settings, root: Path, names: tuple[str, ...], env: Mapping[str, str]
) -> Iterator[Serves]:
    """Controllers `names` running for the block; stopped afterwards whatever happened."""
    group = Serves(settings, root, env)
    try:
        for name in names:
            group.start(name)
        yield group
    finally:
        group.stop_all()


async def wait_for(check: Callable[[], bool], what: str, timeout: float) -> float:
    """Poll a condition other processes make true; seconds it took, TimeoutError after `timeout`."""
    began = time.monotonic()
    while not await asyncio.to_thread(check):
        if time.monotonic() - began > timeout:
            raise TimeoutError(f"no {what} within {timeout:.0f} s")
        await asyncio.sleep(POLL_S)
    return time.monotonic() - began
