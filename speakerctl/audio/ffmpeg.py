"""Running the ffmpeg binary of the imageio-ffmpeg wheel, and reading what it prints.

There is no ffprobe: `probe()` opens the input with no output (ffmpeg prints the input's
description and exits 1), and `decoded_duration_ms()` decodes to the null muxer and reads the
final `out_time_us` of `-progress`. Every failure becomes an `AudioError` with one human line.
"""

from __future__ import annotations

import functools
import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import imageio_ffmpeg

from speakerctl.errors import AudioError

DEFAULT_TIMEOUT_S = 120.0
PROBE_TIMEOUT_S = 30.0
INPUT_FORMATS = ("wav", "mp3", "ogg", "flac", "mov", "matroska", "aac", "amr", "asf", "aiff", "caf")
"""Demuxers an import may use; playlists and concat lists could make ffmpeg read other files."""
QUIET = ("-hide_banner", "-nostdin", "-nostats")
CORRUPTION_MARKERS = ("corrupt input packet", "Packet corrupt")
EMPTY_OUTPUT_MARKER = "Output file is empty"

_NOISE = re.compile(
    r"^(Conversion failed!|Error opening (input|output) files?\b.*|Exiting normally.*"
    r"|At least one output file must be specified|To ignore this.*|Last message repeated.*"
    r"|size=.*|Press \[q\].*)$"
)
_EXPLANATIONS = {
    "Invalid data found when processing input": "not an audio file, or damaged",
    "End of file": "the file ends before any audio",
}
_TAG = re.compile(r"^\[[^\]]* @ 0x[0-9a-f]+\]\s*")
_GENERIC = re.compile(r"^Error opening (input|output)( file)?: ")
_DURATION = re.compile(r"^\s+Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)", re.M)
_AUDIO_STREAM = re.compile(r"^\s+Stream #\d+:\d+\S*: Audio: (\w+)", re.M)
_INPUT = re.compile(r"^Input #0, ([\w,]+), from ", re.M)
_OUT_TIME = re.compile(r"^out_time_us=(\d+)$", re.M)


@dataclass(frozen=True, slots=True)
class FfmpegResult:
    """What a finished ffmpeg run left behind."""

    returncode: int
    stdout: bytes
    stderr: str


@dataclass(frozen=True, slots=True)
class Probe:
    """What ffmpeg says about an input file before decoding it."""

    format_name: str
    audio_codec: str | None
    declared_duration_s: float | None
    """The container's own length; None when absent or only estimated from the bitrate."""
    stderr: str

    @property
    def has_audio(self) -> bool:
        """Whether the file holds at least one audio stream."""
        return self.audio_codec is not None


@functools.cache
def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary shipped in the imageio-ffmpeg wheel (or IMAGEIO_FFMPEG_EXE)."""
    try:
        return str(imageio_ffmpeg.get_ffmpeg_exe())
    except RuntimeError as exc:
        hint = "reinstall the imageio-ffmpeg wheel, or set IMAGEIO_FFMPEG_EXE"
        raise AudioError(f"ffmpeg not found: {exc}", hint=hint) from exc


def input_args(path: Path) -> list[str]:
    """`-i` for a local file, restricted to audio demuxers and the file protocol."""
    allowed = ",".join(INPUT_FORMATS)
    return ["-format_whitelist", allowed, "-protocol_whitelist", "file", "-i", file_url(path)]


def file_url(path: Path) -> str:
    """A path ffmpeg cannot mistake for a URL, a protocol or an option."""
    return f"file:{path.absolute()}"


def run_ffmpeg(
    args: Sequence[str], *, context: str, timeout_s: float = DEFAULT_TIMEOUT_S, check: bool = True
) -> FfmpegResult:
    """Run ffmpeg with args; AudioError "<context>: <reason>" on failure, timeout or no binary."""
    command = [ffmpeg_exe(), *QUIET, *args]
    try:
        done = subprocess.run(
            command, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout_s, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise AudioError(f"{context}: ffmpeg took longer than {timeout_s:g} s") from exc
    except OSError as exc:
        raise AudioError(f"{context}: cannot run ffmpeg ({exc.strerror or exc})") from exc
    result = FfmpegResult(done.returncode, done.stdout, done.stderr.decode("utf-8", "replace"))
    if check and result.returncode != 0:
        raise AudioError(f"{context}: {failure_reason(result.stderr)}")
    return result


def failure_reason(stderr: str) -> str:
    """The last meaningful line of an ffmpeg log, without its `[muxer @ 0x…]` tag."""
    if "not on whitelist" in stderr:
        return f"not a supported audio format (accepted: {', '.join(INPUT_FORMATS)})"
    lines = [_TAG.sub("", line).strip() for line in stderr.splitlines()]
    meaningful = [_GENERIC.sub("", line) for line in lines if line and not _NOISE.match(line)]
    if not meaningful:
        return "ffmpeg failed without saying why"
    explained = _EXPLANATIONS.get(meaningful[-1])
    return f"{explained} (ffmpeg: {meaningful[-1]})" if explained else meaningful[-1]


def probe(path: Path, *, context: str) -> Probe:
    """Describe an input file: container, first audio codec, declared duration."""
    result = run_ffmpeg(input_args(path), context=context, timeout_s=PROBE_TIMEOUT_S, check=False)
    found = _INPUT.search(result.stderr)
    if found is None:
        raise AudioError(f"{context}: {failure_reason(result.stderr)}")
    audio = _AUDIO_STREAM.search(result.stderr)
    return Probe(
        format_name=found.group(1),
        audio_codec=audio.group(1) if audio else None,
        declared_duration_s=_declared_duration(result.stderr),
        stderr=result.stderr,
    )


def _declared_duration(stderr: str) -> float | None:
    """The `Duration:` of the input, unless ffmpeg only estimated it from the bitrate."""
    found = _DURATION.search(stderr)
    if found is None or "Estimating duration from bitrate" in stderr:
        return None
    hours, minutes, seconds = found.groups()
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def decoded_duration_ms(path: Path, *, context: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> int:
    """Decode the first audio stream of a file and return how long it plays, in milliseconds."""
    args = ["-v", "error", *input_args(path), "-map", "0:a:0", "-f", "null", "-"]
    result = run_ffmpeg([*args, "-progress", "pipe:1"], context=context, timeout_s=timeout_s)
    times = _OUT_TIME.findall(result.stdout.decode("ascii", "replace"))
    return round(int(times[-1]) / 1000) if times else 0


def find_marker(stderr: str, markers: Sequence[str]) -> str | None:
    """The first log line (untagged) that contains one of the markers."""
    for line in stderr.splitlines():
        if any(marker in line for marker in markers):
            return _TAG.sub("", line).strip()
    return None
