"""`speakerctl api`: the machine-readable descriptions of the HTTP API and of the MQTT contract."""

from __future__ import annotations

import sys

import typer

from speakerctl.cli.common import state
from speakerctl.errors import ConfigError
from speakerctl.i18n import _
from speakerctl.protocol import asyncapi

app = typer.Typer(
    help=_("Descriptions of the HTTP API (OpenAPI) and the MQTT contract."), no_args_is_help=True
)


@app.command("openapi")
def openapi() -> None:
    """Print the OpenAPI 3.1 document of the HTTP API /api/v1 (docs/openapi.json holds it)."""
    if state.openapi is None:
        raise ConfigError(_("this speakerctl was started without its web server"), hint=_("run `speakerctl`"))
    sys.stdout.write(state.openapi())


@app.command("asyncapi")
def asyncapi_document() -> None:
    """Print the AsyncAPI 3.0 document of the MQTT contract (docs/asyncapi.json holds it)."""
    sys.stdout.write(asyncapi.dumps(asyncapi.document()))
