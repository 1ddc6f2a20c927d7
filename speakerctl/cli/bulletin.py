"""`speakerctl bulletin`: the library of broadcast-ready audio."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from datetime import tzinfo
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from speakerctl.app import bulletins
from speakerctl.app.labels import word
from speakerctl.app.views import BulletinDetailView, ImportedView
from speakerctl.cli.common import console, console_err, current_actor, print_json, state
from speakerctl.cli.text import safe
from speakerctl.clock import Clock
from speakerctl.dates import format_moment, time_zone, zone_label
from speakerctl.files import display_name
from speakerctl.i18n import _

app = typer.Typer(help=_("Bulletins: imported, encoded audio ready to broadcast."), no_args_is_help=True)

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


JsonOpt = Annotated[bool, typer.Option("--json", help=_("Print JSON."))]
TitleOpt = Annotated[str | None, typer.Option(help=_("Title (default: the file name or the first words)."))]
ProfileOpt = Annotated[ProfileName, typer.Option(help=_("speech (Opus 24 kbps) or music (Opus 64 kbps)."))]
ChimeOpt = Annotated[bool, typer.Option("--chime/--no-chime", help=_("Attention chime before and after."))]
VoiceOpt = Annotated[VoiceName, typer.Option(help=_("Northern (vi), southern or central voice."))]
RateOpt = Annotated[int, typer.Option(help=_("Speaking rate, words per minute (80–400)."))]


@contextlib.contextmanager
def _progress(label: str, clock: Clock | None = None) -> Iterator[Callable[[float], None]]:
    """A progress callback that shows a bar on stderr once the work has taken a moment."""
    clock = clock or state.context().clock
    started = clock.now()
    bar: Progress | None = None

    def update(fraction: float) -> None:
        nonlocal bar
        if bar is None:
            if not console_err.is_terminal or (clock.now() - started).total_seconds() < PROGRESS_AFTER_S:
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


def _report(bulletin: ImportedView) -> None:
    """One line about a bulletin just added (or found already there)."""
    if bulletin.created:
        text = _("added bulletin {id} “{title}” ({seconds} s{loudness}, {size} bytes {codec})")
    else:
        text = _(
            "already in the library as bulletin {id} “{title}” ({seconds} s{loudness}, {size} bytes {codec})"
        )
    loudness = f", {bulletin.loudness_lufs:g} LUFS" if bulletin.loudness_lufs is not None else ""
    fields = {"seconds": f"{bulletin.duration_s:.1f}", "size": bulletin.size, "codec": bulletin.codec}
    console.print(
        text.format(id=f"[bold]{bulletin.id}[/]", title=safe(bulletin.title), loudness=loudness, **fields)
    )


def _add(composition: bulletins.Composition, profile: str, chime: bool, as_json: bool, label: str) -> None:
    """Render a composition into the library and say what came of it."""
    actor = current_actor()
    with _progress(label) as progress:
        imported = bulletins.add(
            state.context(), bulletins.finish(composition, profile, chime), progress, actor=actor
        )
    if as_json:
        print_json([imported])
    else:
        _report(imported)


@app.command("add")
def add(
    files: Annotated[list[Path], typer.Argument(help=_("Audio files (wav, mp3, m4a, ogg, flac, amr…)."))],
    title: TitleOpt = None,
    profile: ProfileOpt = ProfileName.SPEECH,
    chime: ChimeOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Import audio files: process them for horn speakers, encode them for the fleet's players."""
    ctx, actor = state.context(), current_actor()
    rows = []
    for path in files:
        with _progress(_("importing {file}").format(file=display_name(path))) as progress:
            imported = bulletins.import_file(
                ctx, path, title, profile=profile.value, chime=chime, progress=progress, actor=actor
            )
        rows.append(imported)
        if not as_json:
            _report(imported)
    if as_json:
        print_json(rows)


@app.command("tts")
def tts(
    text: Annotated[str | None, typer.Argument(help=_("Vietnamese text to speak."))] = None,
    file: Annotated[Path | None, typer.Option("--file", help=_("Read the text from a UTF-8 file."))] = None,
    voice: VoiceOpt = VoiceName.NORTH,
    rate: RateOpt = bulletins.DEFAULT_RATE_WPM,
    title: TitleOpt = None,
    profile: ProfileOpt = ProfileName.SPEECH,
    chime: ChimeOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Make a bulletin from Vietnamese text, offline (espeak-ng)."""
    if (text is None) == (file is None):
        raise typer.BadParameter(_("give the text or --file, not both or neither"))
    speech = bulletins.speech(text, file, voice.value, rate, title)
    _add(speech, profile.value, chime, as_json, _("speaking"))


@app.command("compose")
def compose(
    items: Annotated[
        list[str] | None,
        typer.Argument(
            help=_("Items in order: chime, chime:FILE, say:TEXT, text:FILE, silence:SECONDS, FILE."),
            show_default=False,
        ),
    ] = None,
    from_file: Annotated[
        Path | None, typer.Option("--from", help=_("A TOML file describing the sequence."))
    ] = None,
    voice: VoiceOpt = VoiceName.NORTH,
    rate: RateOpt = bulletins.DEFAULT_RATE_WPM,
    gap: Annotated[float | None, typer.Option(help=_("Seconds of silence between items."))] = None,
    title: TitleOpt = None,
    profile: Annotated[ProfileName | None, typer.Option(help=_("speech or music (default: speech)."))] = None,
    as_json: JsonOpt = False,
) -> None:
    """Make one bulletin from a sequence: chime, spoken intro, recorded item, outro…"""
    if bool(items) == (from_file is not None):
        raise typer.BadParameter(_("give the items or --from FILE, not both or neither"))
    composition = bulletins.sequence(
        items or [],
        from_file,
        voice.value,
        rate,
        gap_s=gap,
        title=title,
        profile=profile.value if profile else None,
    )
    _add(composition, composition.profile, False, as_json, _("composing"))


@app.command("list")
def list_bulletins(as_json: JsonOpt = False) -> None:
    """List the bulletins in the library."""
    ctx = state.context()
    found = bulletins.list_all(ctx)
    if as_json:
        print_json(found)
        return
    tz = time_zone(ctx.settings.timezone)
    added = _("added ({zone})").format(zone=zone_label(tz, ctx.clock.now()))
    table = Table("id", _("title"), _("duration"), _("loudness"), _("codec"), _("size"), added)
    for b in found:
        table.add_row(
            str(b.id),
            safe(b.title),
            f"{b.duration_s:.1f} s",
            "" if b.loudness_lufs is None else f"{b.loudness_lufs:g} LUFS",
            b.codec,
            str(b.size),
            format_moment(b.created_at, tz),
        )
    console.print(table)


@app.command("show")
def show(
    bulletin_id: Annotated[int, typer.Argument(help=_("Bulletin id (see `bulletin list`)."))],
    as_json: JsonOpt = False,
) -> None:
    """A bulletin: length, loudness, encodings, and where and when it has played."""
    ctx = state.context()
    found = bulletins.details(ctx, bulletin_id)
    if as_json:
        print_json(found)
        return
    _print_details(found, time_zone(ctx.settings.timezone))


def _print_details(b: BulletinDetailView, tz: tzinfo) -> None:
    """`bulletin show` for people, times in `tz`."""
    source = _("from {source}").format(source=safe(b.source))
    console.print(f"[bold]{b.id}[/] “{safe(b.title)}”  ({safe(b.profile)}, {source})")
    peak = (
        "" if b.true_peak_dbtp is None else _(", true peak {peak} dBTP").format(peak=f"{b.true_peak_dbtp:g}")
    )
    loudness = _("not measured") if b.loudness_lufs is None else f"{b.loudness_lufs:g} LUFS"
    console.print(f"{b.duration_s:.1f} s, {loudness}{peak}")
    added = format_moment(b.created_at, tz, label=True)
    console.print(_("added {at} by {user}").format(at=added, user=safe(b.created_by)))
    for v in b.variants:
        size = _("{size} bytes").format(size=v.size)
        console.print(f"  {v.codec} {v.bitrate_kbps} kbps, {size}, sha256 {v.sha256[:16]}…")
    if not b.airings:
        console.print(_("never broadcast"))
        return
    at = _("at ({zone})").format(zone=zone_label(tz, b.created_at))
    table = Table(_("broadcast"), at, _("to"), _("played"), _("state"))
    for a in b.airings:
        where = ", ".join(t.name for t in a.targets)
        cells = (a.broadcast, format_moment(a.at, tz), where, f"{a.played}/{a.clusters}", word(a.state))
        table.add_row(*map(safe, cells))
    console.print(table)


@app.command("export")
def export(
    bulletin_id: Annotated[int, typer.Argument(help=_("Bulletin id."))],
    path: Annotated[Path, typer.Argument(help=_("File to write, or a directory to write into."))],
    codec: Annotated[CodecName | None, typer.Option(help=_("Which encoding (default: the first)."))] = None,
    force: Annotated[bool, typer.Option("--force", help=_("Replace an existing file."))] = False,
    as_json: JsonOpt = False,
) -> None:
    """Write a bulletin's encoded audio to a file."""
    written = bulletins.export(
        state.context(), bulletin_id, path, codec.value if codec else None, overwrite=force
    )
    if as_json:
        print_json(written)
    else:
        console.print(_("wrote {path}").format(path=safe(written.path)))


@app.command("rm")
def remove(
    bulletin_id: Annotated[int, typer.Argument(help=_("Bulletin id."))],
    as_json: JsonOpt = False,
) -> None:
    """Remove a bulletin (refused while it is on air or scheduled); its history stays."""
    removed = bulletins.remove(state.context(), bulletin_id, actor=current_actor())
    if as_json:
        print_json(removed)
    else:
        console.print(_("removed bulletin {id} “{title}”").format(id=removed.id, title=safe(removed.title)))
