"""`speakerctl keys`: the controller's command-signing keys (create, list, rotate, retire)."""

from __future__ import annotations

from typing import Annotated

import typer

from speakerctl.app import keys
from speakerctl.cli.common import console, current_actor, print_json, state
from speakerctl.i18n import _

app = typer.Typer(help=_("Command-signing keys: clusters act only on commands signed by a trusted key."))


@app.command("init")
def init() -> None:
    """Create the signing key if there is none; print the file to provision clusters with."""
    key_id, trusted = keys.init(state.context(), actor=current_actor())
    # soft_wrap: a path is never broken across lines, so it can be copied whole.
    console.print(
        _("active key {key}; clusters trust {file}").format(key=key_id, file=trusted), soft_wrap=True
    )


@app.command("list")
def list_keys(as_json: Annotated[bool, typer.Option("--json", help=_("Print JSON."))] = False) -> None:
    """The trusted public keys, the active one marked."""
    rows = keys.list_keys(state.context(), actor=current_actor())
    if as_json:
        print_json(rows)
        return
    for row in rows:
        console.print(row.key_id + ("  " + _("(active)") if row.active else ""))


@app.command("rotate")
def rotate() -> None:
    """Sign with a new key from now on; the old one stays trusted until retired."""
    key_id, trusted = keys.rotate(state.context(), actor=current_actor())
    text = _("active key {key}; give every cluster the new {file}, then `speakerctl keys retire OLD_ID`")
    console.print(text.format(key=key_id, file=trusted), soft_wrap=True)


@app.command("retire")
def retire(key_id: Annotated[str, typer.Argument(help=_("The old key's id."))]) -> None:
    """Stop trusting an old key: clusters given the new trusted.pub refuse its signatures."""
    keys.retire(state.context(), key_id, actor=current_actor())
    console.print(_("retired {key}").format(key=key_id))
