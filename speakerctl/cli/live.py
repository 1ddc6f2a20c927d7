"""`speakerctl live`: relay a station or play a file as if live to zones, and stop live streams."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated

import typer
from rich.live import Live
from rich.table import Table

from speakerctl.app import live as live_app
from speakerctl.app.live import LiveRequest
from speakerctl.cli.common import Exit, console, console_err, current_actor, print_json, run, state
from speakerctl.cli.confirm import confirm
from speakerctl.cli.text import safe
from speakerctl.controller.live import LiveReport
from speakerctl.i18n import _

app = typer.Typer(
    help="Live audio: relay a radio station, play a file as if live, stop.", no_args_is_help=True
)

To = Annotated[list[str], typer.Option("--to", help="Zone or device id; repeat for more.")]
For = Annotated[str | None, typer.Option("--for", help="Stop after this long: 90s, 30m, 2h.")]
PriorityOpt = Annotated[str, typer.Option(help="normal, priority or emergency.")]
Delay = Annotated[int, typer.Option(help="Play-out delay, ms (capture to loudspeaker).")]
AsJson = Annotated[bool, typer.Option("--json", help="Print the outcome as JSON, no status line.")]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Confirm an emergency or a whole province.")]


@dataclass(frozen=True, slots=True)
class Relaying:
    """How a relay rides out its station's stalls."""

    fallback_s: float
    stall_s: float
    filler: str


@app.command("relay")
def relay(
    url: Annotated[str, typer.Argument(help="http(s):// URL of the station's stream.")],
    to: To,
    for_: For = None,
    priority: PriorityOpt = "normal",
    delay: Delay = 1500,
    fallback: Annotated[
        str, typer.Option(help="If the station stalls: filler and retries this long (0: stop at once).")
    ] = "60s",
    stall: Annotated[
        str, typer.Option(help="No audio from the station this long is a stall: the filler airs.")
    ] = "10s",
    filler: Annotated[
        str | None,
        typer.Option(
            help="What airs while the station is away: a bulletin id or an audio file (else silence)."
        ),
    ] = None,
    as_json: AsJson = False,
    yes: Yes = False,
) -> None:
    """Relay a station (tiếp sóng) to zones until it ends, --for is up, or Ctrl-C."""
    ctx = state.context()
    relay = Relaying(
        live_app.parse_duration(fallback),
        live_app.parse_duration(stall),
        live_app.filler(ctx, filler) if filler else "",
    )
    _stream(url, to, for_, priority, delay, as_json, yes, relay)


@app.command("file")
def file(
    path: Annotated[Path, typer.Argument(help="Audio file to play as if live.")],
    to: To,
    for_: For = None,
    priority: PriorityOpt = "normal",
    delay: Delay = 1500,
    as_json: AsJson = False,
    yes: Yes = False,
) -> None:
    """Play a local file as if it were live (rehearsals, tests)."""
    _stream(str(path), to, for_, priority, delay, as_json, yes)


@app.command("mic")
def mic(
    to: To,
    device: Annotated[
        str, typer.Option(help="PulseAudio source (see `pactl list sources short`).")
    ] = "default",
    for_: For = None,
    priority: PriorityOpt = "normal",
    delay: Delay = 1500,
    as_json: AsJson = False,
    yes: Yes = False,
) -> None:
    """Speak live from this machine's microphone, levelled for loudspeakers, until --for or Ctrl-C."""
    _stream(live_app.microphone(device), to, for_, priority, delay, as_json, yes)


@app.command("list")
def list_(as_json: AsJson = False) -> None:
    """The latest live streams: source, who started them, how they ended, clusters that played."""
    streams = live_app.recent(state.context())
    if as_json:
        print_json(streams)
        return
    table = Table(_("stream"), _("source"), _("by"), _("started"), _("end"), _("played"), _("skipped"))
    for s in streams:
        started = s.started_at.astimezone().strftime("%Y-%m-%d %H:%M")
        end = s.end_reason or _("running")
        table.add_row(safe(s.stream), safe(s.source), safe(s.actor), started, safe(end),
                      str(s.clusters_played), str(s.clusters_skipped))  # fmt: skip
    console.print(table)


@app.command("show")
def show(
    stream: Annotated[str, typer.Argument(help="Stream id (see `live list`).")], as_json: AsJson = False
) -> None:
    """One live stream, cluster by cluster: when each played it, underruns, frames lost."""
    detail = live_app.show(state.context(), stream)
    if as_json:
        print_json(detail)
        return
    table = Table(_("cluster"), _("played"), _("lost"), _("underruns"), _("end"))
    for c in detail.clusters:
        table.add_row(
            safe(c.device), str(c.played), str(c.lost), str(c.underruns), safe(c.skipped or c.reason)
        )
    console.print(table)


@app.command("stop")
def stop() -> None:
    """Stop every live stream that is running (started here or by another process)."""
    stopped = run(live_app.stop_live(state.context(), actor=current_actor()))
    if not stopped:
        console.print(_("no live stream is running"))
    for stream in stopped:
        console.print(_("stopped {stream}").format(stream=stream))


def _stream(
    source: str,
    to: list[str],
    for_: str | None,
    priority: str,
    delay: int,
    as_json: bool,
    yes: bool,
    relay: Relaying | None = None,
) -> None:
    duration = live_app.parse_duration(for_) if for_ else None
    actor = current_actor().name
    request = LiveRequest(source, tuple(to), actor, duration_s=duration, delay_ms=delay)
    if relay is not None:
        request = replace(request, fallback_s=relay.fallback_s, stall_s=relay.stall_s, filler=relay.filler)
    request = live_app.with_priority(request, priority)  # usage errors before connecting
    # An emergency or a whole province is confirmed as for bulletins, before anything is captured.
    confirmed = confirm(live_app.confirmation(state.context(), request, current_actor()), yes)
    report = run(_until_interrupted(request, quiet=as_json, confirmed=confirmed))
    if as_json:
        sys.stdout.write(json.dumps(_outcome(report), ensure_ascii=False, indent=2) + "\n")
    else:
        _summary(report)
    if not any(c.played for c in report.clusters.values()):
        raise typer.Exit(Exit.INCOMPLETE)


async def _until_interrupted(request: LiveRequest, *, quiet: bool, confirmed: bool) -> LiveReport:
    """Run the stream; Ctrl-C (or SIGTERM) ends it cleanly: live_stop to every cluster, then the report."""
    stop, loop = asyncio.Event(), asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        if quiet:
            return await live_app.live(
                state.context(), request, None, stop, actor=current_actor(), confirmed=confirmed
            )
        with Live(console=console_err, transient=True) as status:

            def show(report: LiveReport, elapsed_s: float) -> None:
                status.update(_status_line(report, elapsed_s))

            return await live_app.live(
                state.context(), request, show, stop, actor=current_actor(), confirmed=confirmed
            )
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def _status_line(report: LiveReport, elapsed_s: float) -> str:
    minutes, seconds = divmod(int(elapsed_s), 60)
    return _("live {elapsed}  listening {listening}  underrunning {under}  skipped {skipped}").format(
        elapsed=f"{minutes:02d}:{seconds:02d}",
        listening=report.listening,
        under=report.underrunning,
        skipped=len(report.skipped),
    )


def _outcome(report: LiveReport) -> dict[str, object]:
    return {
        "stream": report.stream_id,
        "end_reason": report.end_reason,
        "frames": report.frames,
        "audio_ms": report.audio_ms,
        "clusters": {
            d: {
                "skipped": c.skipped,
                "reason": c.reason,
                "played": c.played,
                "lost": c.lost,
                "underruns": c.underruns,
            }
            for d, c in report.clusters.items()
        },
    }


def _summary(report: LiveReport) -> None:
    played = [c for c in report.clusters.values() if c.played]
    console.print(
        _("live stream {stream} ended ({reason}): {seconds:.0f} s sent").format(
            stream=report.stream_id, reason=report.end_reason, seconds=report.audio_ms / 1000
        )
    )
    table = Table(_("clusters"), _("count"))
    table.add_row(_("played"), str(len(played)))
    table.add_row(_("with underruns"), str(report.underrunning))
    table.add_row(_("frames lost"), str(sum(c.lost for c in played)))
    if report.source_outages:
        table.add_row(_("source outages (silence sent)"), str(report.source_outages))
    for reason in sorted(set(report.skipped.values())):
        table.add_row(
            _("skipped: {reason}").format(reason=reason), str(list(report.skipped.values()).count(reason))
        )
    console.print(table)
