"""`speakerctl bulletin`: the library of broadcast-ready audio."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from speakerctl.cli.common import console, console_err, print_json, state
from speakerctl.clock import SystemClock
from speakerctl.controller.app import import_bulletin, open_store
from speakerctl.store import BulletinInfo

app = typer.Typer(help="Bulletins: imported, encoded audio ready to broadcast.", no_args_is_help=True)


def _row(b: BulletinInfo) -> dict[str, object]:
    return {
        "id": b.id,
        "title": b.title,
        "duration_s": round(b.duration_ms / 1000, 1),
        "codec": b.codec,
        "size": b.size,
        "sha256": b.sha256,
        "source": b.source_name,
        "created_at": b.created_at.isoformat(),
        "created_by": b.created_by,
    }


@app.command("add")
def add(
    files: Annotated[list[Path], typer.Argument(help="Audio files (wav, mp3, m4a, ogg, flac...).")],
    title: Annotated[str | None, typer.Option(help="Title (default: the file name).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Import audio files: encode them for the fleet's players and add them to the library."""
    store = open_store(state.settings, sync_inventory=False)
    rows = []
    for path in files:
        with console_err.status(f"encoding {path.name}…"):
            bulletin, created = import_bulletin(store, state.settings, SystemClock(), path, title)
        rows.append(_row(bulletin) | {"created": created})
        if not as_json:
            verb = "added" if created else "already in the library as"
            console.print(
                f"{verb} bulletin [bold]{bulletin.id}[/] “{bulletin.title}” "
                f"({bulletin.duration_ms / 1000:.1f} s, {bulletin.size} bytes {bulletin.codec})"
            )
    if as_json:
        print_json(rows)


@app.command("list")
def list_bulletins(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the bulletins in the library."""
    bulletins = open_store(state.settings, sync_inventory=False).bulletins()
    if as_json:
        print_json([_row(b) for b in bulletins])
        return
    table = Table("id", "title", "duration", "codec", "size", "added")
    for b in bulletins:
        table.add_row(
            str(b.id),
            b.title,
            f"{b.duration_ms / 1000:.1f} s",
            b.codec,
            str(b.size),
            b.created_at.strftime("%Y-%m-%d %H:%M"),
        )
    console.print(table)
