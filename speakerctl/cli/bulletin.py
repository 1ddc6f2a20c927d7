"""`speakerctl bulletin`: the library of broadcast-ready audio."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from speakerctl.audio import (
    DEFAULT_RATE_WPM,
    Composition,
    Speech,
    Voice,
    load_composition,
    parse_item,
    read_text,
    with_chimes,
)
from speakerctl.cli.common import console, console_err, print_json, state
from speakerctl.clock import SystemClock
from speakerctl.controller import library
from speakerctl.controller.app import import_bulletin, open_store
from speakerctl.store import Airing, BulletinInfo, VariantInfo

app = typer.Typer(help="Bulletins: imported, encoded audio ready to broadcast.", no_args_is_help=True)

PROGRESS_AFTER_S = 0.5
"""An import shows a progress bar once it has taken this long."""


class ProfileName(StrEnum):
    """Processing profiles (speakerctl.audio.PROFILES)."""

    SPEECH = "speech"
    MUSIC = "music"


class VoiceName(StrEnum):
    """Text-to-speech voices (speakerctl.audio.VOICES)."""

    NORTH = "vi"
    SOUTH = "vi-vn-x-south"
    CENTRAL = "vi-vn-x-central"


class CodecName(StrEnum):
    """Delivery codecs (speakerctl.audio.CODECS)."""

    OPUS = "opus"
    MP3 = "mp3"


JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
TitleOpt = Annotated[str | None, typer.Option(help="Title (default: the file name or the first words).")]
ProfileOpt = Annotated[ProfileName, typer.Option(help="speech (Opus 24 kbps) or music (Opus 64 kbps).")]
ChimeOpt = Annotated[bool, typer.Option("--chime/--no-chime", help="Attention chime before and after.")]
VoiceOpt = Annotated[VoiceName, typer.Option(help="Northern (vi), southern or central voice.")]
RateOpt = Annotated[int, typer.Option(help="Speaking rate, words per minute (80–400).")]


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
        "loudness_lufs": b.loudness_lufs,
        "true_peak_dbtp": b.true_peak_dbtp,
        "profile": b.profile,
    }


@contextlib.contextmanager
def _progress(label: str) -> Iterator[Callable[[float], None]]:
    """A progress callback that shows a bar on stderr once the work has taken a moment."""
    started = time.monotonic()
    bar: Progress | None = None

    def update(fraction: float) -> None:
        nonlocal bar
        if bar is None:
            if not console_err.is_terminal or time.monotonic() - started < PROGRESS_AFTER_S:
                return
            bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TaskProgressColumn(),
                TimeElapsedColumn(),
                console=console_err,
                transient=True,
            )
            bar.add_task(label, total=1.0)
            bar.start()
        bar.update(bar.task_ids[0], completed=fraction)

    try:
        yield update
    finally:
        if bar is not None:
            bar.stop()


def _report(bulletin: BulletinInfo, created: bool) -> None:
    """One line about a bulletin just added (or found already there)."""
    verb = "added" if created else "already in the library as"
    loudness = f", {bulletin.loudness_lufs:g} LUFS" if bulletin.loudness_lufs is not None else ""
    console.print(
        f"{verb} bulletin [bold]{bulletin.id}[/] “{bulletin.title}” "
        f"({bulletin.duration_ms / 1000:.1f} s{loudness}, {bulletin.size} bytes {bulletin.codec})"
    )


def _add(composition: Composition, as_json: bool, label: str) -> None:
    """Render a composition into the library and say what came of it."""
    store = open_store(state.settings, sync_inventory=False)
    with _progress(label) as progress:
        imported = library.add_bulletin(store, state.settings, SystemClock(), composition, progress=progress)
    if as_json:
        print_json([_row(imported.bulletin) | {"created": imported.created}])
    else:
        _report(imported.bulletin, imported.created)


@app.command("add")
def add(
    files: Annotated[list[Path], typer.Argument(help="Audio files (wav, mp3, m4a, ogg, flac, amr…).")],
    title: TitleOpt = None,
    profile: ProfileOpt = ProfileName.SPEECH,
    chime: ChimeOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Import audio files: process them for horn speakers, encode them for the fleet's players."""
    store = open_store(state.settings, sync_inventory=False)
    rows = []
    for path in files:
        with _progress(f"importing {path.name}") as progress:
            bulletin, created = import_bulletin(
                store,
                state.settings,
                SystemClock(),
                path,
                title,
                profile=profile.value,
                chime=chime,
                progress=progress,
            )
        rows.append(_row(bulletin) | {"created": created})
        if not as_json:
            _report(bulletin, created)
    if as_json:
        print_json(rows)


@app.command("tts")
def tts(
    text: Annotated[str | None, typer.Argument(help="Vietnamese text to speak.")] = None,
    file: Annotated[Path | None, typer.Option("--file", help="Read the text from a UTF-8 file.")] = None,
    voice: VoiceOpt = VoiceName.NORTH,
    rate: RateOpt = DEFAULT_RATE_WPM,
    title: TitleOpt = None,
    profile: ProfileOpt = ProfileName.SPEECH,
    chime: ChimeOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Make a bulletin from Vietnamese text, offline (espeak-ng)."""
    if (text is None) == (file is None):
        raise typer.BadParameter("give the text or --file, not both or neither")
    speech = (
        Speech(read_text(file), Voice(voice.value, rate), file.name)
        if file is not None
        else Speech(text or "", Voice(voice.value, rate))
    )
    _add(Composition(with_chimes([speech], chime), title, profile.value), as_json, "speaking")


@app.command("compose")
def compose(
    items: Annotated[
        list[str] | None,
        typer.Argument(
            help="Items in order: chime, chime:FILE, say:TEXT, text:FILE, silence:SECONDS, FILE.",
            show_default=False,
        ),
    ] = None,
    from_file: Annotated[
        Path | None, typer.Option("--from", help="A TOML file describing the sequence.")
    ] = None,
    voice: VoiceOpt = VoiceName.NORTH,
    rate: RateOpt = DEFAULT_RATE_WPM,
    gap: Annotated[float | None, typer.Option(help="Seconds of silence between items.")] = None,
    title: TitleOpt = None,
    profile: Annotated[ProfileName | None, typer.Option(help="speech or music (default: speech).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Make one bulletin from a sequence: chime, spoken intro, recorded item, outro…"""
    if bool(items) == (from_file is not None):
        raise typer.BadParameter("give the items or --from FILE, not both or neither")
    if from_file is not None:
        base = load_composition(from_file)
    else:
        parsed = tuple(parse_item(spec, Voice(voice.value, rate)) for spec in items or [])
        base = Composition(parsed)
    composition = Composition(
        base.items,
        title or base.title,
        profile.value if profile else base.profile,
        base.gap_s if gap is None else gap,
    )
    _add(composition, as_json, "composing")


@app.command("list")
def list_bulletins(as_json: JsonOpt = False) -> None:
    """List the bulletins in the library."""
    bulletins = open_store(state.settings, sync_inventory=False).bulletins.all()
    if as_json:
        print_json([_row(b) for b in bulletins])
        return
    table = Table("id", "title", "duration", "loudness", "codec", "size", "added")
    for b in bulletins:
        table.add_row(
            str(b.id),
            b.title,
            f"{b.duration_ms / 1000:.1f} s",
            "" if b.loudness_lufs is None else f"{b.loudness_lufs:g} LUFS",
            b.codec,
            str(b.size),
            b.created_at.strftime("%Y-%m-%d %H:%M"),
        )
    console.print(table)


def _variant_row(v: VariantInfo) -> dict[str, object]:
    return {"codec": v.codec, "bitrate_kbps": v.bitrate_kbps, "size": v.size, "sha256": v.sha256}


def _airing_row(a: Airing, zone_names: dict[str, str]) -> dict[str, Any]:
    b = a.broadcast
    return {
        "broadcast": b.id,
        "at": b.created_at.isoformat(),
        "state": b.state.value,
        "priority": b.priority.name.lower(),
        "targets": [{"id": t, "name": zone_names.get(t, t)} for t in b.targets],
        "clusters": a.clusters,
        "played": a.played,
        "first_playing_at": a.first_playing_at.isoformat() if a.first_playing_at else None,
        "last_finished_at": a.last_finished_at.isoformat() if a.last_finished_at else None,
    }


@app.command("show")
def show(
    bulletin_id: Annotated[int, typer.Argument(help="Bulletin id (see `bulletin list`).")],
    as_json: JsonOpt = False,
) -> None:
    """A bulletin: length, loudness, encodings, and where and when it has played."""
    store = open_store(state.settings, sync_inventory=False)
    found = library.details(store, bulletin_id)
    zone_names = {z.id: z.name for z in store.zones.all()}
    airings = [_airing_row(a, zone_names) for a in found.airings]
    if as_json:
        variants = [_variant_row(v) for v in found.variants]
        print_json(_row(found.bulletin) | {"variants": variants, "airings": airings})
        return
    _print_details(found.bulletin, found.variants, airings)


def _print_details(b: BulletinInfo, variants: list[VariantInfo], airings: list[dict[str, Any]]) -> None:
    """`bulletin show` for people."""
    console.print(f"[bold]{b.id}[/] “{b.title}”  ({b.profile}, from {b.source_name})")
    peak = "" if b.true_peak_dbtp is None else f", true peak {b.true_peak_dbtp:g} dBTP"
    loudness = "not measured" if b.loudness_lufs is None else f"{b.loudness_lufs:g} LUFS"
    console.print(f"{b.duration_ms / 1000:.1f} s, {loudness}{peak}")
    console.print(f"added {b.created_at:%Y-%m-%d %H:%M} UTC by {b.created_by}")
    for v in variants:
        console.print(f"  {v.codec} {v.bitrate_kbps} kbps, {v.size} bytes, sha256 {v.sha256[:16]}…")
    if not airings:
        console.print("never broadcast")
        return
    table = Table("broadcast", "at (UTC)", "to", "played", "state")
    for a in airings:
        where = ", ".join(t["name"] for t in a["targets"])
        table.add_row(a["broadcast"], a["at"][:16], where, f"{a['played']}/{a['clusters']}", a["state"])
    console.print(table)


@app.command("export")
def export(
    bulletin_id: Annotated[int, typer.Argument(help="Bulletin id.")],
    path: Annotated[Path, typer.Argument(help="File to write, or a directory to write into.")],
    codec: Annotated[CodecName | None, typer.Option(help="Which encoding (default: the first).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing file.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Write a bulletin's encoded audio to a file."""
    store = open_store(state.settings, sync_inventory=False)
    written = library.export_bulletin(
        store, state.settings, bulletin_id, path, codec=codec.value if codec else None, overwrite=force
    )
    if as_json:
        print_json({"id": bulletin_id, "path": str(written), "size": written.stat().st_size})
    else:
        console.print(f"wrote {written}")


@app.command("rm")
def remove(
    bulletin_id: Annotated[int, typer.Argument(help="Bulletin id.")],
    as_json: JsonOpt = False,
) -> None:
    """Remove a bulletin (refused while it is on air or scheduled); its history stays."""
    store = open_store(state.settings, sync_inventory=False)
    removed = library.remove_bulletin(store, state.settings, SystemClock(), bulletin_id)
    if as_json:
        print_json({"id": removed.id, "title": removed.title, "removed": True})
    else:
        console.print(f"removed bulletin {removed.id} “{removed.title}”")
