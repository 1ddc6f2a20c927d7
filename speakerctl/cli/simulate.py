"""`speakerctl simulate`: a simulated fleet of cluster agents against a broker."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from speakerctl.app import runtime
from speakerctl.cli.aio import until_signalled
from speakerctl.cli.common import console_err, run, state
from speakerctl.config import Settings
from speakerctl.i18n import _


def simulate(
    count: Annotated[
        int | None, typer.Option(help=_("Clusters to run (default: the whole inventory)."))
    ] = None,
    time_scale: Annotated[float, typer.Option(help=_("Play audio this many times faster."))] = 1.0,
    cache_dir: Annotated[Path | None, typer.Option(help=_("Where the clusters cache content."))] = None,
    clock_offset_ms: Annotated[int, typer.Option(help=_("Spread of simulated clock offsets."))] = 0,
    heartbeat: Annotated[float, typer.Option(help=_("Seconds between status heartbeats."))] = 60.0,
    battery_share: Annotated[float, typer.Option(help=_("Share of clusters on a draining battery."))] = 0.0,
    fault_share: Annotated[float, typer.Option(help=_("Share of clusters with an amplifier fault."))] = 0.0,
    old_firmware_share: Annotated[float, typer.Option(help=_("Share of clusters on old firmware."))] = 0.0,
    trust: Annotated[
        Path | None,
        typer.Option(
            help=_("The controller's public keys, as provisioned (default: <data dir>/keys/trusted.pub).")
        ),
    ] = None,
    provisioning: Annotated[
        Path | None,
        typer.Option(
            help=_(
                "Run the clusters of this provisioning file, or of this directory of bundles, each with "
                "its own account (default: every cluster of the inventory, with the controller's account)."
            )
        ),
    ] = None,
    processes: Annotated[
        int, typer.Option(min=1, help=_("Spread the clusters over this many processes (large fleets)."))
    ] = 1,
    part: Annotated[
        str | None, typer.Option(hidden=True, help="I/N: run every N-th cluster from the I-th.")
    ] = None,
) -> None:
    """Run simulated clusters (the real agent code on simulated hardware) until interrupted."""
    ctx = state.context()
    options = runtime.fleet_options(
        ctx,
        cache_dir=cache_dir,
        time_scale=time_scale,
        clock_offset_ms=clock_offset_ms,
        heartbeat_s=heartbeat,
        conditions=(battery_share, fault_share, old_firmware_share),
        trust=trust or _default_trust(ctx.settings),
    )
    if processes > 1:
        commands = runtime.spread_commands(ctx, options, count, provisioning, processes)
        text = _("starting the simulated clusters in {n} processes")
        console_err.print(text.format(n=processes))
        run(until_signalled(runtime.spread(commands, _ready)))
        return
    url = ", ".join(a.url for a in ctx.settings.broker_addresses)
    provisioned = runtime.part_of(runtime.clusters(ctx, count, provisioning), part)
    console_err.print(_("starting {n} simulated clusters on {url}").format(n=len(provisioned), url=url))
    run(until_signalled(runtime.simulate(ctx, provisioned, options, _ready)))


def _default_trust(settings: Settings) -> Path | None:
    found = runtime.default_trust(settings)
    if found is None:
        text = _("no {file}: the simulated clusters will refuse every command")
        console_err.print(text.format(file=settings.keys_dir / "trusted.pub"))
    return found


def _ready(count: int) -> None:
    # The demo and the tests wait for this line on stdout.
    sys.stdout.write(f"{runtime.READY} {count} clusters online\n")
    sys.stdout.flush()
