"""`speakerctl serve`: the long-running controller."""

from __future__ import annotations

from typing import Annotated

import typer

from speakerctl.app import cap_feed, province, runtime
from speakerctl.cli.aio import until_signalled
from speakerctl.cli.common import console_err, run, state
from speakerctl.cli.text import announce
from speakerctl.errors import ConfigError
from speakerctl.i18n import _


def serve(
    http: Annotated[
        str | None, typer.Option(help=_("Serve the operator page, JSON API and /metrics on HOST:PORT."))
    ] = None,
) -> None:
    """Run the controller: the broker link, status and events, the schedules, CAP alerts."""
    # …and the integrations of the settings (provinces, webhooks): docs/operations.md, Integrations.
    front_end = _front_end(http) if http else None
    companions = (cap_feed.watching, province.alongside)
    run(until_signalled(runtime.serve(state.context(), front_end, announce, companions)))
    console_err.print(_("controller stopped"))


def _front_end(bind: str) -> runtime.FrontEndFactory:
    if state.web is None:
        raise ConfigError(
            _("this speakerctl has no web front end"),
            hint=_("run it as `speakerctl` or `python -m speakerctl`"),
        )
    return state.web(bind)
