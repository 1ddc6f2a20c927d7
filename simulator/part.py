"""One process of `speakerctl simulate --processes N`: a share of the fleet, with the simulator's imports.

The parent (the CLI, which imports the whole controller side) writes what every process needs into a spec
file and starts `python -m simulator.part SPEC I/N` N times. A child started as `speakerctl simulate`
imported the CLI too: about 110 MB of modules it never used, per process, and seconds more to start
(bench/scale.py reports the processes' fixed memory as sim_mb_fixed).

The spec is JSON: `brokers` (addresses, credentials included: the file is private), `options` (the
FleetOptions fields that a command line sets), and either `clusters` (provisioning records) or
`bundles` (a directory of provisioning bundles, each cluster with its own account).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from devices.identity import Installed, read_bundles
from simulator.conditions import FleetConditions
from simulator.fleet import Fleet, FleetOptions, freeze_heap
from speakerctl.broker.address import BrokerAddress
from speakerctl.files import write_atomic
from speakerctl.protocol.provisioning import Provisioning

READY = "ready:"
"""How a simulator process says all its clusters are online: `ready: <n> clusters online`."""


def write_spec(
    path: Path,
    brokers: tuple[BrokerAddress, ...],
    options: FleetOptions,
    clusters: tuple[Provisioning, ...] | Path,
) -> None:
    """Write what the processes of a spread fleet need (privately: it may hold the broker password)."""
    spec: dict[str, Any] = {
        "brokers": [asdict(b) for b in brokers],
        "options": {
            "root": str(options.root),
            "time_scale": options.time_scale,
            "seed": options.seed,
            "max_clock_offset_ms": options.max_clock_offset_ms,
            "heartbeat_s": options.heartbeat_s,
            "conditions": asdict(options.conditions),
            "trust_file": str(options.trust_file) if options.trust_file else None,
        },
    }
    if isinstance(clusters, Path):
        spec["bundles"] = str(clusters)
    else:
        spec["clusters"] = [c.to_wire() for c in clusters]
    write_atomic(path, json.dumps(spec))


def read_spec(
    path: Path,
) -> tuple[tuple[BrokerAddress, ...], FleetOptions, tuple[Provisioning | Installed, ...]]:
    """The brokers, options and clusters a spec file names."""
    spec = json.loads(path.read_text(encoding="utf-8"))
    brokers = tuple(BrokerAddress(**b) for b in spec["brokers"])
    raw = spec["options"]
    options = FleetOptions(
        root=Path(raw["root"]),
        time_scale=raw["time_scale"],
        seed=raw["seed"],
        max_clock_offset_ms=raw["max_clock_offset_ms"],
        heartbeat_s=raw["heartbeat_s"],
        conditions=FleetConditions(**raw["conditions"]),
        trust_file=Path(raw["trust_file"]) if raw["trust_file"] else None,
    )
    clusters: tuple[Provisioning | Installed, ...]
    if "bundles" in spec:
        clusters = read_bundles(Path(spec["bundles"]))
    else:
        clusters = tuple(Provisioning.from_wire(c) for c in spec["clusters"])
    return brokers, options, clusters


async def run(
    brokers: tuple[BrokerAddress, ...], options: FleetOptions, clusters: tuple[Provisioning | Installed, ...]
) -> None:
    """Run the clusters until cancelled; print the ready line once all are online."""
    first, *fallbacks = brokers
    fleet = Fleet(clusters, first, options, fallbacks)
    async with asyncio.TaskGroup() as tg:
        tg.create_task(fleet.run())
        await fleet.wait_online(timeout=120)
        freeze_heap()
        sys.stdout.write(f"{READY} {len(fleet.devices)} clusters online\n")
        sys.stdout.flush()


async def _until_terminated(brokers: tuple[BrokerAddress, ...], options: FleetOptions, clusters: Any) -> None:
    # The parent ends its processes with SIGTERM: cancelling lets every link close its session.
    task = asyncio.ensure_future(run(brokers, options, clusters))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await task


def main(argv: list[str]) -> None:
    """`python -m simulator.part SPEC I/N`: run every N-th cluster of the spec from the I-th."""
    spec, part = argv
    index, count = (int(x) for x in part.split("/"))
    brokers, options, clusters = read_spec(Path(spec))
    asyncio.run(_until_terminated(brokers, options, clusters[index::count]))


if __name__ == "__main__":
    main(sys.argv[1:])
