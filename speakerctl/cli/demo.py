"""`speakerctl demo`: embedded broker, a simulated province and a broadcast, all on this machine."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from speakerctl.audio import generate_speechlike
from speakerctl.broker.embedded import EmbeddedBroker
from speakerctl.cli.broadcast import print_summary, run_broadcast
from speakerctl.cli.common import Exit, console, console_err, run, state
from speakerctl.cli.simulate import fleet_process
from speakerctl.clock import SystemClock
from speakerctl.config import Settings
from speakerctl.controller.app import import_bulletin, open_store
from speakerctl.controller.service import BroadcastRequest
from speakerctl.fleet import load_inventory
from speakerctl.protocol import Priority
from speakerctl.protocol.limits import MAX_TARGETS
from speakerctl.security.keys import load_or_create_signer, trusted_path


def demo(
    seconds: Annotated[float, typer.Option(help="Length of the demo bulletin.")] = 8.0,
    time_scale: Annotated[float, typer.Option(help="Simulated clusters play this many times faster.")] = 1.0,
    count: Annotated[
        int | None,
        typer.Option(min=1, max=MAX_TARGETS, help="Simulate and target only the first N clusters."),
    ] = None,
    workdir: Annotated[Path | None, typer.Option(help="Keep the demo's files here.")] = None,
) -> None:
    """Broadcast a bulletin to a simulated province through an embedded broker and report the result."""
    with contextlib.ExitStack() as stack:
        root = workdir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="speakerctl-demo-")))
        broker = stack.enter_context(EmbeddedBroker())
        console_err.print(f"embedded MQTT broker on {broker.url}")
        settings = state.settings.with_overrides(
            broker=broker.url,
            data_dir=root / "controller",
            database_url="",
            inventory=state.settings.inventory,
        )
        # Provisioning: the clusters get the controller's public key as a file, as real ones do.
        load_or_create_signer(settings.keys_dir)
        fleet = stack.enter_context(_fleet(settings, root / "fleet", time_scale, count))
        console_err.print(fleet)
        store = open_store(settings)
        audio = generate_speechlike(seconds, root / "ban-tin-demo.wav")
        bulletin, _ = import_bulletin(store, settings, SystemClock(), audio, "Bản tin thử nghiệm")
        console_err.print(f"bulletin {bulletin.id} “{bulletin.title}”, {bulletin.duration_ms / 1000:.1f} s")
        request = BroadcastRequest(bulletin.id, _targets(settings, count), Priority.NORMAL)
        result = run(run_broadcast(settings, request, show_progress=True))
        print_summary(result)
        console.print(
            f"report: speakerctl --data-dir {settings.data_dir} report {result.broadcast_id}"
            if workdir
            else ""
        )
    if not result.complete:
        raise typer.Exit(Exit.INCOMPLETE)


def _targets(settings: Settings, count: int | None) -> tuple[str, ...]:
    """The whole province, or just the clusters the fleet simulates (the inventory's first `count`)."""
    inventory = load_inventory(settings.inventory)
    if count is None or count >= len(inventory.devices):
        return (inventory.root.id,)
    return tuple(d.id for d in inventory.devices[:count])


@contextlib.contextmanager
def _fleet(settings: Settings, cache: Path, time_scale: float, count: int | None) -> Iterator[str]:
    """The simulated fleet in its own process, as real clusters would be; yields its ready line."""
    args = [
        "--broker",
        settings.broker,
        "simulate",
        "--cache-dir",
        str(cache),
        "--time-scale",
        str(time_scale),
        "--heartbeat",
        "30",
        "--trust",
        str(trusted_path(settings.keys_dir)),
    ]
    if count:
        args += ["--count", str(count)]
    with fleet_process(args) as ready:
        yield ready
