"""The `speakerctl` command: one sub-app per noun, errors mapped to exit codes in one place."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from speakerctl.cli import (
    alerts,
    broadcast,
    bulletin,
    demo,
    devices,
    fleet,
    report,
    schedule,
    serve,
    simulate,
    zones,
)
from speakerctl.cli import broker as broker_cli
from speakerctl.cli import keys as keys_cli
from speakerctl.cli import live as live_cli
from speakerctl.cli import provision as provision_cli
from speakerctl.cli import resume as resume_cli
from speakerctl.cli.common import Exit, console_err, state
from speakerctl.cli.text import safe
from speakerctl.config import load_settings
from speakerctl.errors import (
    AccessError,
    AudioError,
    AuthError,
    ConfigError,
    LinkError,
    NeedsConfirmation,
    NotFound,
    NotSignedIn,
    SpeakerctlError,
    UsageError,
)

app = typer.Typer(
    name="speakerctl",
    help="Controller for networks of smart public-address loudspeaker clusters.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(devices.app, name="devices")
devices.app.command("provision")(provision_cli.provision)
app.add_typer(keys_cli.app, name="keys")
app.add_typer(broker_cli.app, name="broker")
app.command("resume")(resume_cli.resume)
app.add_typer(zones.app, name="zones")
app.add_typer(fleet.app, name="fleet")
app.add_typer(alerts.app, name="alerts")
app.add_typer(bulletin.app, name="bulletin")
app.add_typer(schedule.app, name="schedule")
app.add_typer(live_cli.app, name="live")
app.command("broadcast")(broadcast.broadcast)
app.command("report")(report.report)
app.command("demo")(demo.demo)
app.command("serve")(serve.serve)
app.command("simulate")(simulate.simulate)


@app.callback()
def _root(
    config: Annotated[typer.FileText | None, typer.Option(help="TOML settings file.")] = None,
    broker: Annotated[str | None, typer.Option(help="Broker URL, mqtt://[user:pass@]host:port.")] = None,
    database: Annotated[str | None, typer.Option(help="SQLAlchemy URL of the store.")] = None,
    data_dir: Annotated[str | None, typer.Option(help="Where the store and content live.")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log more.")] = False,
) -> None:
    """Settings come from --config, then SPEAKERCTL_* variables, then these options."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    settings = load_settings(Path(config.name) if config else None)
    state.settings = settings.with_overrides(
        broker=broker, database_url=database, data_dir=Path(data_dir) if data_dir else None
    )


EXIT_CODES: list[tuple[type[SpeakerctlError], int]] = [
    (UsageError, Exit.USAGE),
    (ConfigError, Exit.CONFIG),
    (NotFound, Exit.NOT_FOUND),
    (AuthError, Exit.AUTH),
    (NotSignedIn, Exit.AUTH),
    (AccessError, Exit.FORBIDDEN),
    (NeedsConfirmation, Exit.UNCONFIRMED),
    (LinkError, Exit.LINK),
    (AudioError, Exit.INPUT),
    (SpeakerctlError, Exit.FAILURE),
]


def _leaf(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    if isinstance(exc, BaseExceptionGroup):
        found = [e for e in exc.exceptions if isinstance(_leaf(e), SpeakerctlError)]
        return _leaf(found[0]) if found else exc
    return exc


def main() -> None:
    """Entry point: typer handles usage errors; project errors become one line and an exit code."""
    try:
        app()
    except SystemExit:
        raise
    except BaseException as exc:
        leaf = _leaf(exc)
        if not isinstance(leaf, SpeakerctlError):
            raise
        sys.exit(report_error(leaf))


def report_error(error: SpeakerctlError) -> int:
    """Print the error and its hint on stderr; the exit code that goes with it."""
    console_err.print(f"[bold red]error:[/] {safe(error)}", highlight=False)
    if error.hint:
        console_err.print(f"[dim]hint:[/] {safe(error.hint)}", highlight=False)
    return exit_code(error)


def exit_code(error: SpeakerctlError) -> int:
    """The exit code of an error class."""
    return next(code for cls, code in EXIT_CODES if isinstance(error, cls))
