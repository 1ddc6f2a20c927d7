"""`simulate --processes N`: one fleet spread over N processes, each running every N-th cluster."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from waiting import Observed

from speakerctl.app.runtime import fleet_process, part_of
from speakerctl.broker.address import BrokerAddress
from speakerctl.broker.link import Incoming, Link
from speakerctl.broker.mosquitto import MosquittoProcess
from speakerctl.errors import UsageError
from speakerctl.fleet import load_inventory, provisioning_records, scaled_inventory
from speakerctl.protocol import codec, topics
from speakerctl.security.keys import load_or_create_signer, trusted_path


def test_the_parts_cover_the_fleet_once() -> None:
    fleet = tuple(provisioning_records(scaled_inventory(load_inventory(), 10)))
    parts = [part_of(fleet, f"{i}/3") for i in range(3)]
    assert sorted(r.device_id for p in parts for r in p) == sorted(r.device_id for r in fleet)
    assert [len(p) for p in parts] == [4, 3, 3]
    for bad in ("3/3", "x", "1/0"):
        with pytest.raises(UsageError):
            part_of(fleet, bad)


async def test_a_fleet_in_three_processes_comes_online_whole(
    mosquitto: MosquittoProcess, tmp_path: Path
) -> None:
    load_or_create_signer(tmp_path / "keys")
    online: Observed[str] = Observed()

    async def note(message: Incoming) -> None:
        status = codec.decode_status(message.payload)
        if status.online:
            online.add(status.device_id)

    watcher = Link(BrokerAddress.parse(mosquitto.url), note)
    await watcher.subscribe([topics.ALL_STATUS])
    trust = str(trusted_path(tmp_path / "keys"))
    args = ["--broker", mosquitto.url, "--data-dir", str(tmp_path / "data"), "simulate", "--count", "12",
            "--processes", "3", "--cache-dir", str(tmp_path / "fleet"), "--trust", trust]  # fmt: skip
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(watcher.run())
        with fleet_process(args) as ready:
            assert ready.startswith("ready: 12 clusters online"), ready
            await online.wait_for(lambda seen: len(set(seen)) == 12, "12 clusters online")
        task.cancel()
