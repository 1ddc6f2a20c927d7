"""`speakerctl devices provision`: broker accounts for clusters (and the controller), secrets shown once."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from speakerctl.app import keys
from speakerctl.cli.common import console, console_err, print_json, state
from speakerctl.cli.text import id_column


def provision(
    device_ids: Annotated[list[str] | None, typer.Argument(help="Clusters to provision.")] = None,
    zone: Annotated[str | None, typer.Option(help="Every cluster of this zone and below.")] = None,
    controller: Annotated[bool, typer.Option(help="Also (re)create the controller's account.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Create each cluster's broker identity and secret; the secret is shown now and never again."""
    issued = keys.provision(state.context(), list(device_ids or []), zone, controller)
    if as_json:
        print_json(issued)
        return
    names = id_column("username", (i.username for i in issued.accounts))
    table = Table(names, id_column("secret (shown once)", (i.secret for i in issued.accounts)))
    for item in issued.accounts:
        table.add_row(item.username, item.secret)
    console.print(table)
    console_err.print(
        f"install each secret in its cluster with the trusted keys file {issued.trusted_keys}; "
        "then `speakerctl broker config mosquitto`"
    )
