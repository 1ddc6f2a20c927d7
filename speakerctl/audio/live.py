"""Live sources: a relay URL or a file played as if live, levelled and encoded to Opus by ffmpeg.

`opus_packets()` runs one ffmpeg process (the imageio-ffmpeg binary) that reads the source, levels it
for loudspeakers (high-pass, low-pass, a short-window dynamic normaliser instead of the bulletins'
two-pass loudnorm, whose 3 s look-ahead a live path cannot afford, and the bulletins' limiter) and
writes Ogg/Opus to a pipe; `OggReader` cuts it into packets. The caller paces them in real time on
its own clock: ffmpeg is only read as fast as the stream is sent, so the pipe's back-pressure holds
a file played as if live to real time. Failures become one-line `LiveSourceError`s.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from speakerctl.audio.ffmpeg import QUIET, failure_reason, ffmpeg_exe, input_args
from speakerctl.audio.ogg import OggReader
from speakerctl.audio.processing import Processing, limiter
from speakerctl.errors import LiveSourceError, SourceStalled

SILENCE_PACKET = b"\xf8\xff\xfe"
"""A 20 ms Opus packet of silence (CELT, full band, mono): what a relay sends while its source is away."""
SILENCE_MS = 20
RETRY_S = 2.0
"""While a relay's source is away, how much silence goes out between two attempts to reopen it."""
MAX_FILLER_S = 600
"""The longest filler kept in memory (it loops): 10 minutes is 30,000 packets, about 3.6 MB at 48 kbit/s."""
OutageListener = Callable[[LiveSourceError | None], None]
"""Told when a relay's source goes away (with why) and when it is back (None)."""
URL_PROTOCOLS = "http,https,tcp,tls,crypto,hls,httpproxy"
"""What a relay URL may use: no file, pipe or concat, so a URL cannot read the controller's files."""
_URL = re.compile(r"^https?://", re.IGNORECASE)
READ_SIZE = 16_384
NOT_AUDIO_MARKERS = ("matches no streams", "does not contain any stream", "Invalid data found", "End of file")
UNREACHABLE_MARKERS = (
    "Connection refused",
    "Failed to resolve",
    "No route to host",
    "timed out",
    "Server returned",
    "Network is unreachable",
)


@dataclass(frozen=True, slots=True)
class LiveEncoding:
    """How a live source is encoded: Opus packet duration and bitrate, mono at 48 kHz."""

    packet_ms: int = 20
    bitrate: int = 48_000
    stall_s: float = 10.0
    """No byte from ffmpeg for this long: the source stalled."""
    fallback_s: float = 0.0
    """A relay whose source fails after it started sends silence and retries for this long; 0: it ends."""


BROWSER_PREFIX = "browser:"
"""A source `browser:USER` is a console user's browser microphone (what the store records)."""
BROWSER_FORMATS = "matroska,webm,ogg"
"""What a browser's MediaRecorder sends (WebM in Chromium, Ogg in Firefox); nothing else is demuxed."""
MIC_PREFIX = "mic:"
"""A source `mic:NAME` is the PulseAudio capture device NAME (`mic:default`: the default microphone)."""


def microphone(device: str = "default") -> str:
    """The source text of a microphone (what `opus_packets` takes and the store records)."""
    return f"{MIC_PREFIX}{device}"


def browser(user: str) -> str:
    """The source text of a console user's browser microphone."""
    return f"{BROWSER_PREFIX}{user}"


def is_url(source: str) -> bool:
    """Whether a source is an HTTP(S) URL rather than a local file."""
    return bool(_URL.match(source))


def _input(source: str) -> list[str]:
    if source.startswith(MIC_PREFIX):
        return ["-f", "pulse", "-name", "speakerctl", "-i", source.removeprefix(MIC_PREFIX) or "default"]
    if is_url(source):
        # A short probe: a station's stream is read in real time, so each second of probing would be a
        # second of latency for the whole relay (the backlog is then paced out, never caught up).
        return ["-protocol_whitelist", URL_PROTOCOLS, "-rw_timeout", "10000000", "-fflags", "nobuffer",
                "-probesize", "32768", "-analyzeduration", "0", "-i", source]  # fmt: skip
    path = Path(source)
    if not path.is_file():
        raise LiveSourceError(f"no such audio file: {source}", hint="give a file path or an http(s):// URL")
    return input_args(path)


def _piped_input() -> list[str]:
    # A small probe: the recording's header arrives in its first chunk, and speech must not wait for more.
    return ["-format_whitelist", BROWSER_FORMATS, "-fflags", "nobuffer", "-probesize", "4096",
            "-analyzeduration", "0", "-i", "pipe:0"]  # fmt: skip


def _filters(processing: Processing) -> str:
    return ",".join(
        [
            f"highpass=f={processing.highpass_hz}",
            f"lowpass=f={processing.lowpass_hz}",
            "dynaudnorm=f=100:g=5:p=0.7:m=10",
            limiter(processing.limiter_ceiling_dbfs),
        ]
    )


def ffmpeg_command(
    source: str, processing: Processing, encoding: LiveEncoding, piped: bool = False
) -> list[str]:
    """The ffmpeg command line that turns `source` (or, `piped`, a browser's recording on stdin) into
    levelled Ogg/Opus on stdout."""
    return [
        ffmpeg_exe(),
        *QUIET,
        "-loglevel",
        "error",
        *(_piped_input() if piped else _input(source)),
        *("-map", "0:a:0", "-vn", "-ac", "1", "-ar", "48000", "-af", _filters(processing)),
        *("-c:a", "libopus", "-b:a", str(encoding.bitrate), "-application", "audio"),
        *("-frame_duration", str(encoding.packet_ms), "-page_duration", str(encoding.packet_ms * 1000)),
        *("-flush_packets", "1", "-f", "ogg", "pipe:1"),
    ]


async def opus_packets(
    source: str, processing: Processing | None = None, encoding: LiveEncoding | None = None
) -> AsyncGenerator[bytes]:
    """Opus packets of `source` as ffmpeg produces them; LiveSourceError if it cannot be read."""
    encoding = encoding or LiveEncoding()
    command = ffmpeg_command(source, processing or Processing(), encoding)
    process = await asyncio.create_subprocess_exec(
        *command,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async for packet in _read(process, source, encoding.stall_s):
            yield packet
    finally:
        await _end(process)


async def browser_packets(
    source: str,
    recording: AsyncIterator[bytes],
    processing: Processing | None = None,
    encoding: LiveEncoding | None = None,
) -> AsyncGenerator[bytes]:
    """Opus packets of a browser's recording (WebM or Ogg chunks from MediaRecorder), levelled like a
    microphone's; they end when `recording` does. LiveSourceError if it is not audio or stalls."""
    encoding = encoding or LiveEncoding()
    command = ffmpeg_command(source, processing or Processing(), encoding, piped=True)
    process = await asyncio.create_subprocess_exec(
        *command,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    writer = asyncio.get_running_loop().create_task(_write(process, recording))
    try:
        async for packet in _read(process, source, encoding.stall_s):
            yield packet
    finally:
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await writer
        await _end(process)


async def _write(process: asyncio.subprocess.Process, recording: AsyncIterator[bytes]) -> None:
    """Feed the recording to ffmpeg; its end closes ffmpeg's input, which then finishes the stream."""
    assert process.stdin is not None
    try:
        async for chunk in recording:
            process.stdin.write(chunk)
            await process.stdin.drain()
    except (BrokenPipeError, ConnectionResetError):
        return  # ffmpeg gave up on the input: its error is read from stderr
    finally:
        if not process.stdin.is_closing():
            process.stdin.close()


async def _read(process: asyncio.subprocess.Process, source: str, stall_s: float) -> AsyncIterator[bytes]:
    assert process.stdout is not None and process.stderr is not None
    reader, produced = OggReader(), 0
    while True:
        try:
            data = await asyncio.wait_for(process.stdout.read(READ_SIZE), stall_s)
        except TimeoutError as exc:
            raise SourceStalled(
                f"the live source {source} sent no audio for {stall_s:g} s",
                hint="check the station or the network; the relay stopped",
            ) from exc
        if not data:
            break
        for packet in reader.feed(data):
            produced += 1
            yield packet
    stderr = (await process.stderr.read()).decode("utf-8", "replace")
    if await process.wait() != 0 or produced == 0:
        raise _failure(source, stderr)


def _failure(source: str, stderr: str) -> LiveSourceError:
    reason = failure_reason(stderr)
    if source.startswith(BROWSER_PREFIX):
        return LiveSourceError(
            f"the browser sent no audio that can be played ({reason})",
            hint="record with Opus in WebM or Ogg (a current Chrome, Firefox or Safari)",
        )
    if source.startswith(MIC_PREFIX):
        return LiveSourceError(
            f"no microphone: cannot open {source.removeprefix(MIC_PREFIX)!r} ({reason})",
            hint="plug in the microphone and check PulseAudio sees it: pactl list sources short",
        )
    if any(m in stderr for m in UNREACHABLE_MARKERS):
        return LiveSourceError(f"cannot reach {source}: {reason}", hint="check the URL and the network")
    if any(m in stderr for m in NOT_AUDIO_MARKERS) or "ffmpeg failed" in reason:
        return LiveSourceError(f"{source} is not an audio stream: {reason}", hint="give a radio stream URL")
    return LiveSourceError(f"cannot read {source}: {reason}")


async def _end(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
    # Drain the pipes: with a full, paused stdout reader, wait() alone would never see the exit.
    with contextlib.suppress(ProcessLookupError):
        await process.communicate()


async def filler_packets(path: str, encoding: LiveEncoding | None = None) -> list[bytes]:
    """A file's Opus packets, levelled like a live source, read at once (not paced) and kept to loop
    while a relay's station is away; LiveSourceError if it cannot be read."""
    encoding = encoding or LiveEncoding()
    if encoding.packet_ms != SILENCE_MS:
        raise LiveSourceError(f"a filler needs {SILENCE_MS} ms packets")
    limit = MAX_FILLER_S * 1000 // SILENCE_MS
    packets: list[bytes] = []
    reading = opus_packets(path, encoding=encoding)
    try:
        async for packet in reading:
            packets.append(packet)
            if len(packets) >= limit:
                break
    finally:
        await reading.aclose()
    return packets


def _gap(filler: Sequence[bytes]) -> Iterator[bytes]:
    """What airs while the source is away: the filler, looped, or silence."""
    return itertools.cycle(filler) if filler else itertools.repeat(SILENCE_PACKET)


async def resilient_packets(
    source: str,
    processing: Processing | None = None,
    encoding: LiveEncoding | None = None,
    on_outage: OutageListener | None = None,
    filler: Sequence[bytes] = (),
) -> AsyncGenerator[bytes]:
    """`opus_packets`, but a source that fails once it has started (no audio for `stall_s`, or gone) is
    replaced by `filler` (looped; silence if none) and reopened every RETRY_S until it comes back or
    `fallback_s` has passed (then its error is raised)."""
    encoding = encoding or LiveEncoding()
    if encoding.fallback_s > 0 and encoding.packet_ms != SILENCE_MS:
        raise LiveSourceError(f"a relay with a fallback needs {SILENCE_MS} ms packets")
    loop, away_since, started = asyncio.get_running_loop(), None, False
    gap = _gap(filler)
    while True:
        try:
            async for packet in _attempt(source, processing, encoding):
                if away_since is not None and on_outage is not None:
                    on_outage(None)
                away_since, started = None, True
                yield packet
            if not is_url(source) or encoding.fallback_s <= 0:
                return
            # A station does not end: a stream that closes is an outage, like a stall.
            raise LiveSourceError(f"{source} closed its stream")
        except LiveSourceError as exc:
            # A source that never worked is a mistake to report at once, not an outage to wait out.
            now = loop.time()
            first_failure = away_since is None
            away_since = now if away_since is None else away_since
            if not started or encoding.fallback_s <= 0 or now - away_since > encoding.fallback_s:
                raise
            if first_failure and on_outage is not None:
                on_outage(exc)
        for _ in range(int(RETRY_S * 1000) // SILENCE_MS):
            yield next(gap)


async def _attempt(
    source: str, processing: Processing | None, encoding: LiveEncoding
) -> AsyncIterator[bytes]:
    packets = opus_packets(source, processing, encoding)
    try:
        async for packet in packets:
            yield packet
    finally:
        await packets.aclose()
