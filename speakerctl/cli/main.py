"""The `speakerctl` command: one sub-app per noun, errors mapped to exit codes in one place."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from speakerctl.cli import (
    alerts,
    approvals,
    broadcast,
    bulletin,
    cap,
    demo,
    devices,
    fleet,
    helptext,
    report,
    schedule,
    serve,
    simulate,
    user,
    zones,
)
from speakerctl.cli import api as api_cli
from speakerctl.cli import broker as broker_cli
from speakerctl.cli import keys as keys_cli
from speakerctl.cli import live as live_cli
from speakerctl.cli import province as province_cli
from speakerctl.cli import provision as provision_cli
from speakerctl.cli import resume as resume_cli
from speakerctl.cli import stop as stop_cli
from speakerctl.cli.common import Exit, console_err, state
from speakerctl.cli.text import safe
from speakerctl.config import load_settings
from speakerctl.errors import (
    AccessError,
    AlertRejected,
    AudioError,
    AuthError,
    AwaitsApproval,
    ConfigError,
    LinkError,
    LoginRefused,
    NeedsConfirmation,
    NotFound,
    NotSignedIn,
    RemoteUnavailable,
    SpeakerctlError,
    UsageError,
)
from speakerctl.i18n import _, choose, normalise, set_language

app = typer.Typer(
    name="speakerctl",
    help=_("Controller for networks of smart public-address loudspeaker clusters."),
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
app.add_typer(cap.app, name="cap")
app.add_typer(bulletin.app, name="bulletin")
bulletin.app.command("submit")(approvals.submit)
bulletin.app.command("queue")(approvals.queue)
bulletin.app.command("approve")(approvals.approve)
bulletin.app.command("reject")(approvals.reject)
zones.app.command("policy")(approvals.zone_policy)
app.add_typer(schedule.app, name="schedule")
app.add_typer(broadcast.app, name="broadcast")
broadcast.app.command("send")(broadcast.broadcast)
broadcast.app.command("stop")(stop_cli.stop_broadcast)
app.command("stop")(stop_cli.stop_zone)
app.add_typer(live_cli.app, name="live")
app.add_typer(province_cli.app, name="province")
app.command("report")(report.report)
app.command("demo")(demo.demo)
app.command("serve")(serve.serve)
app.command("simulate")(simulate.simulate)
app.add_typer(user.app, name="user")
app.command("login")(user.login)
app.command("logout")(user.logout)
app.command("whoami")(user.whoami)
app.add_typer(api_cli.app, name="api")
helptext.translate(app)


@app.callback()
def _root(
    config: Annotated[typer.FileText | None, typer.Option(help=_("TOML settings file."))] = None,
    broker: Annotated[
        str | None,
        typer.Option(
            help=_("Broker URL, mqtt://[user:pass@]host:port; several, comma-separated, for failover.")
        ),
    ] = None,
    database: Annotated[str | None, typer.Option(help=_("SQLAlchemy URL of the store."))] = None,
    data_dir: Annotated[str | None, typer.Option(help=_("Where the store and content live."))] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help=_("Log more."))] = False,
    lang: Annotated[
        str | None,
        typer.Option(
            "--lang", help=_("Language: vi or en (default: SPEAKERCTL_LANG, the settings, the locale).")
        ),
    ] = None,
) -> None:
    """Settings come from --config, then SPEAKERCTL_* variables, then these options."""
    if lang is not None and normalise(lang) is None:
        raise UsageError(
            _("unknown language {lang!r}").format(lang=lang), hint=_("use --lang vi or --lang en")
        )
    set_language(choose(lang))  # for errors in the settings themselves
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    settings = load_settings(Path(config.name) if config else None)
    state.settings = settings.with_overrides(
        broker=broker, database_url=database, data_dir=Path(data_dir) if data_dir else None
    )
    set_language(choose(lang, setting=settings.language))


EXIT_CODES: list[tuple[type[SpeakerctlError], int]] = [
    (UsageError, Exit.USAGE),
    (ConfigError, Exit.CONFIG),
    (NotFound, Exit.NOT_FOUND),
    (AuthError, Exit.AUTH),
    (NotSignedIn, Exit.AUTH),
    (LoginRefused, Exit.AUTH),
    (AwaitsApproval, Exit.AWAITS_APPROVAL),
    (AccessError, Exit.FORBIDDEN),
    (NeedsConfirmation, Exit.UNCONFIRMED),
    (LinkError, Exit.LINK),
    (RemoteUnavailable, Exit.LINK),
    (AudioError, Exit.INPUT),
    (AlertRejected, Exit.INPUT),
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
    label = _("waiting:") if isinstance(error, AwaitsApproval) else _("error:")
    colour = "bold yellow" if isinstance(error, AwaitsApproval) else "bold red"
    console_err.print(f"[{colour}]{label}[/] {safe(error)}", highlight=False)
    if error.hint:
        hint_word = _("hint:")
        console_err.print(f"[dim]{hint_word}[/] {safe(error.hint)}", highlight=False)
    return exit_code(error)


def exit_code(error: SpeakerctlError) -> int:
    """The exit code of an error class."""
    return next(code for cls, code in EXIT_CODES if isinstance(error, cls))
