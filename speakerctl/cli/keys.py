"""`speakerctl keys`: the controller's command-signing keys (create, list, rotate, retire)."""

from __future__ import annotations

from typing import Annotated

import typer

from speakerctl.cli.common import console, print_json, state
from speakerctl.security import keys

app = typer.Typer(help="Command-signing keys: clusters act only on commands signed by a trusted key.")


@app.command("init")
def init() -> None:
    """Create the signing key if there is none; print the file to provision clusters with."""
    signer = keys.load_or_create_signer(state.settings.keys_dir)
    console.print(f"active key {signer.key_id}; clusters trust {keys.trusted_path(state.settings.keys_dir)}")


@app.command("list")
def list_keys(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """The trusted public keys, the active one marked."""
    active = keys.load_or_create_signer(state.settings.keys_dir).key_id
    rows = [{"key_id": kid, "active": kid == active} for kid in keys.trusted_ids(state.settings.keys_dir)]
    if as_json:
        print_json(rows)
        return
    for row in rows:
        console.print(f"{row['key_id']}{'  (active)' if row['active'] else ''}")


@app.command("rotate")
def rotate() -> None:
    """Sign with a new key from now on; the old one stays trusted until retired."""
    signer = keys.rotate(state.settings.keys_dir)
    console.print(
        f"active key {signer.key_id}; give every cluster the new "
        f"{keys.trusted_path(state.settings.keys_dir)}, then `speakerctl keys retire OLD_ID`"
    )


@app.command("retire")
def retire(key_id: Annotated[str, typer.Argument(help="The old key's id.")]) -> None:
    """Stop trusting an old key: clusters given the new trusted.pub refuse its signatures."""
    keys.retire(state.settings.keys_dir, key_id)
    console.print(f"retired {key_id}")
