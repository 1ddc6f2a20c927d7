"""`speakerctl devices provision`: broker accounts for clusters (and the controller), secrets shown once."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from speakerctl.cli.common import console, console_err, print_json, state
from speakerctl.errors import NotFound
from speakerctl.fleet import load_inventory
from speakerctl.security import keys
from speakerctl.security.credentials import CONTROLLER_USER, Credentials


def provision(
    device_ids: Annotated[list[str] | None, typer.Argument(help="Clusters to provision.")] = None,
    zone: Annotated[str | None, typer.Option(help="Every cluster of this zone and below.")] = None,
    controller: Annotated[bool, typer.Option(help="Also (re)create the controller's account.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Create each cluster's broker identity and secret; the secret is shown now and never again."""
    settings = state.settings
    inventory = load_inventory(settings.inventory)
    known = {d.id for d in inventory.devices}
    chosen = list(device_ids or [])
    if zone is not None:
        chosen += [d.id for d in inventory.devices_under(zone)]
    unknown = [d for d in chosen if d not in known]
    if unknown:
        raise NotFound(f"no cluster named {unknown[0]!r} in the inventory", hint="speakerctl devices list")
    names = list(dict.fromkeys(([CONTROLLER_USER] if controller else []) + chosen))
    issued = Credentials.in_dir(settings.data_dir).provision(names)
    signer = keys.load_or_create_signer(settings.keys_dir)
    trusted = str(keys.trusted_path(settings.keys_dir))
    if as_json:
        print_json(
            {"trusted_keys": trusted, "key_id": signer.key_id}
            | {"accounts": [{"username": i.username, "secret": i.secret} for i in issued]}
        )
        return
    table = Table("username", "secret (shown once)")
    for item in issued:
        table.add_row(item.username, item.secret)
    console.print(table)
    console_err.print(
        f"install each secret in its cluster with the trusted keys file {trusted}; "
        "then `speakerctl broker config mosquitto`"
    )
