"""`speakerctl simulate`: a simulated fleet of cluster agents against a broker."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Annotated

import typer

from devices.identity import read_provisioning
from simulator.conditions import FleetConditions
from simulator.fleet import Fleet, FleetOptions
from speakerctl.cli.aio import until_signalled
from speakerctl.cli.common import console_err, run, state
from speakerctl.config import Settings
from speakerctl.errors import LinkError
from speakerctl.fleet import load_inventory, provisioning_records, scaled_inventory
from speakerctl.protocol.provisioning import Provisioning

READY = "ready:"


def simulate(
    count: Annotated[int | None, typer.Option(help="Clusters to run (default: the whole inventory).")] = None,
    time_scale: Annotated[float, typer.Option(help="Play audio this many times faster.")] = 1.0,
    cache_dir: Annotated[Path | None, typer.Option(help="Where the clusters cache content.")] = None,
    clock_offset_ms: Annotated[int, typer.Option(help="Spread of simulated clock offsets.")] = 0,
    heartbeat: Annotated[float, typer.Option(help="Seconds between status heartbeats.")] = 60.0,
    battery_share: Annotated[float, typer.Option(help="Share of clusters on a draining battery.")] = 0.0,
    fault_share: Annotated[float, typer.Option(help="Share of clusters with an amplifier fault.")] = 0.0,
    old_firmware_share: Annotated[float, typer.Option(help="Share of clusters on old firmware.")] = 0.0,
    trust: Annotated[
        Path | None,
        typer.Option(
            help="The controller's public keys, as provisioned (default: <data dir>/keys/trusted.pub)."
        ),
    ] = None,
    provisioning: Annotated[
        Path | None,
        typer.Option(
            help="Run the clusters of this provisioning file (default: every cluster of the inventory)."
        ),
    ] = None,
) -> None:
    """Run simulated clusters (the real agent code on simulated hardware) until interrupted."""
    settings = state.settings
    options = FleetOptions(
        root=cache_dir or settings.data_dir / "fleet",
        time_scale=time_scale,
        max_clock_offset_ms=clock_offset_ms,
        heartbeat_s=heartbeat,
        conditions=FleetConditions(battery_share, fault_share, old_firmware_share),
        trust_file=trust or _default_trust(settings),
    )
    clusters = read_provisioning(provisioning) if provisioning else _provision(settings, count)
    run(until_signalled(_simulate(settings, clusters, options)))


def _provision(settings: Settings, count: int | None) -> tuple[Provisioning, ...]:
    """What the inventory's clusters (cut short or padded to `count`) are told at provisioning."""
    inventory = load_inventory(settings.inventory)
    return provisioning_records(scaled_inventory(inventory, count) if count else inventory)


def _default_trust(settings: Settings) -> Path | None:
    path = settings.keys_dir / "trusted.pub"
    if not path.exists():
        console_err.print(f"no {path}: the simulated clusters will refuse every command")
        return None
    return path


async def _simulate(settings: Settings, clusters: Sequence[Provisioning], options: FleetOptions) -> None:
    import asyncio

    fleet = Fleet(clusters, settings.broker_address, options)
    console_err.print(f"starting {len(fleet.devices)} simulated clusters on {settings.broker_address.url}")
    async with asyncio.TaskGroup() as tg:
        tg.create_task(fleet.run())
        await fleet.wait_online(timeout=120)
        # The demo and the tests wait for this line on stdout.
        sys.stdout.write(f"{READY} {len(fleet.devices)} clusters online\n")
        sys.stdout.flush()


@contextlib.contextmanager
def fleet_process(args: Sequence[str]) -> Iterator[str]:
    """Run `speakerctl ARGS` (a simulate command) in its own process; yield its ready line."""
    cmd = [sys.executable, "-m", "speakerctl", *args]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) as proc:
        try:
            yield _wait_ready(proc)
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


def _wait_ready(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith(READY):
            return line.strip()
    raise LinkError(f"the simulated fleet exited (code {proc.wait()}) before it was ready")
