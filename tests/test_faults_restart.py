"""A controller killed and the broker restarted in the middle of a broadcast: it resumes and ends."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

from test_faults import ZONE, random_bulletin

from simulator.faults import FaultProfile, FleetRunner
from simulator.fleet import Fleet, FleetOptions
from speakerctl.app.context import open_store
from speakerctl.broker.mosquitto import MosquittoConfig, MosquittoProcess
from speakerctl.broker.ports import free_port
from speakerctl.config import Settings
from speakerctl.controller.resume import resume_broadcasts
from speakerctl.controller.service import Controller
from speakerctl.fleet import load_inventory, provisioning_records
from speakerctl.protocol.lifecycle import FINAL
from speakerctl.security.keys import load_or_create_signer, trusted_path
from speakerctl.store import BroadcastState, Store


async def test_broadcast_survives_a_controller_crash_and_a_broker_restart(
    tmp_path: Path, mosquitto_binary: str
) -> None:
    config = MosquittoConfig(port=free_port(), persistence=True)
    broker = MosquittoProcess(config, tmp_path / "mosquitto", binary=mosquitto_binary).start()
    settings = Settings(
        data_dir=tmp_path / "ctl", broker=broker.url, accept_window_s=1, broadcast_timeout_s=40
    )
    store = open_store(settings)
    bulletin = random_bulletin(store, settings.content_dir, 8 * 16384)
    load_or_create_signer(settings.keys_dir)
    ids = [d.id for d in load_inventory().devices_under(ZONE)]
    options = FleetOptions(
        root=tmp_path / "fleet",
        time_scale=20,
        trust_file=trusted_path(settings.keys_dir),
        faults=FaultProfile(bandwidth_kbps=384, latency_ms=50),  # a 3G link: ~3 s for the content
        repair_after_s=0.5,
    )
    fleet = Fleet(provisioning_records(load_inventory()), settings.broker_address, options)
    fleet.devices = {k: v for k, v in fleet.devices.items() if k in ids}
    try:
        async with FleetRunner() as runner:
            for device in fleet.devices.values():
                runner.start(device.agent)
            await fleet.wait_online(30)
            await asyncio.sleep(0.5)  # retained statuses reach the broker before the controller reads them
            crashed = _broadcast_in_a_process(settings, bulletin)
            await _until_some_accepted(store, crashed)
            await asyncio.sleep(0.5)
            crashed.send_signal(signal.SIGKILL)  # no clean-up at all: the store says "running"
            crashed.wait(5)
            played_before = sum(len(d.output.played) for d in fleet.devices.values())
            broker.stop()
            await asyncio.sleep(0.5)
            broker.start()  # sessions and queued messages come back from its persistence file
            assert store.broadcasts.latest()[0].state is BroadcastState.RUNNING
            controller = Controller(settings, store)
            async with controller.running():
                results = await resume_broadcasts(controller)
    finally:
        broker.stop()
    assert len(results) == 1
    assert played_before < len(ids)  # the crash really was in the middle
    deliveries = store.deliveries.of(results[0].broadcast_id)
    assert len(deliveries) == len(ids) and all(d.state in FINAL for d in deliveries)
    assert all(d.state == "finished" for d in deliveries), {d.device_id: d.state for d in deliveries}
    assert store.broadcasts.get(results[0].broadcast_id).state is BroadcastState.COMPLETE
    for device in fleet.devices.values():  # never twice, though the command went out twice
        assert len(device.output.played) <= 1
    assert sum(len(d.output.played) for d in fleet.devices.values()) == len(ids)


async def _until_some_accepted(store: Store, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """Wait until the broadcast runs in the other process and clusters have begun to fetch it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline and process.poll() is None:
        found = store.broadcasts.latest()
        if found and store.deliveries.counts(found[0].id).get("pending", 0) < len(
            store.deliveries.of(found[0].id)
        ):
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the broadcast never started in the controller process")


def _broadcast_in_a_process(settings: Settings, bulletin: int) -> subprocess.Popen[bytes]:
    cmd = [
        sys.executable,
        "-m",
        "speakerctl",
        "--data-dir",
        str(settings.data_dir),
        "--broker",
        settings.broker,
    ]
    cmd += ["broadcast", str(bulletin), "--to", ZONE, "--json"]
    env = os.environ | {"SPEAKERCTL_ACCEPT_WINDOW_S": "1"}
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
