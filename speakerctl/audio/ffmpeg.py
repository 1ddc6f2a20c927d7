"""Running the ffmpeg binary of the imageio-ffmpeg wheel, and reading what it prints.

There is no ffprobe: `probe()` opens the input with no output (ffmpeg prints the input's
description and exits 1), `measure()` decodes to the null muxer through the `ebur128` filter and
reads its summary and the final `out_time_us` of `-progress`. Every failure becomes an
`AudioError` with one human line.
"""

from __future__ import annotations

import functools
import math
import re
import subprocess
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import imageio_ffmpeg

from speakerctl.errors import AudioError
from speakerctl.files import no_space

DEFAULT_TIMEOUT_S = 120.0
PROBE_TIMEOUT_S = 30.0
INPUT_FORMATS = ("wav", "mp3", "ogg", "flac", "mov", "matroska", "aac", "amr", "asf", "aiff", "caf")
"""Demuxers an import may use; playlists and concat lists could make ffmpeg read other files."""
QUIET = ("-hide_banner", "-nostdin", "-nostats")
CORRUPTION_MARKERS = ("corrupt input packet", "Packet corrupt")
EMPTY_OUTPUT_MARKER = "Output file is empty"
NO_SPACE_MARKER = "No space left on device"
SILENCE_FLOOR_LUFS = -70.0
"""ebur128's absolute gate: an integrated loudness at or below it means nothing was heard."""

ProgressFn = Callable[[float], None]
"""Told the media time (seconds) an ffmpeg run has reached, as it goes."""

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
_OUT_TIME = re.compile(rb"^out_time_us=(\d+)$", re.M)
_SUMMARY = re.compile(r"\] Summary:\s*$", re.M)
_INTEGRATED = re.compile(r"^\s+I:\s+(-?[\d.]+|-inf) LUFS", re.M)
_TRUE_PEAK = re.compile(r"^\s+True peak:\s*\n\s+Peak:\s+(-?[\d.]+|-inf) dBFS", re.M)
_SAMPLE_PEAK = re.compile(r"^\s+Sample peak:\s*\n\s+Peak:\s+(-?[\d.]+|-inf) dBFS", re.M)
_SILENCE = re.compile(r"silence_(start|end): (-?[\d.]+)")


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


@dataclass(frozen=True, slots=True)
class Loudness:
    """An EBU R128 measurement: integrated loudness and peaks (None when not measured)."""

    integrated_lufs: float
    true_peak_dbtp: float | None = None
    sample_peak_dbfs: float | None = None

    @property
    def silent(self) -> bool:
        """Whether nothing rose above the absolute gate."""
        return self.integrated_lufs <= SILENCE_FLOOR_LUFS


@dataclass(frozen=True, slots=True)
class Measurement:
    """How long a decoded file plays and how loud it is."""

    duration_ms: int
    loudness: Loudness


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


def raw_input_args(path: Path, sample_format: str, rate_hz: int) -> list[str]:
    """`-i` for headerless mono PCM the pipeline wrote itself (f32le or s16le)."""
    return ["-f", sample_format, "-ar", str(rate_hz), "-ch_layout", "mono", "-i", file_url(path)]


def file_url(path: Path) -> str:
    """A path ffmpeg cannot mistake for a URL, a protocol or an option."""
    return f"file:{path.absolute()}"


def run_ffmpeg(
    args: Sequence[str],
    *,
    context: str,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    check: bool = True,
    progress: ProgressFn | None = None,
) -> FfmpegResult:
    """Run ffmpeg with args; AudioError "<context>: <reason>" on failure, timeout or no binary.

    With `progress`, ffmpeg reports on stdout (`-progress pipe:1`) and `progress` is told each
    media time it reaches; stdout then holds those reports rather than output data.
    """
    reporting = ("-progress", "pipe:1") if progress is not None else ()
    command = [ffmpeg_exe(), *QUIET, *reporting, *args]
    try:
        returncode, stdout, stderr = _run(command, timeout_s, progress)
    except subprocess.TimeoutExpired as exc:
        raise AudioError(f"{context}: ffmpeg took longer than {timeout_s:g} s") from exc
    except OSError as exc:
        raise AudioError(f"{context}: cannot run ffmpeg ({exc.strerror or exc})") from exc
    result = FfmpegResult(returncode, stdout, stderr.decode("utf-8", "replace"))
    if check and result.returncode != 0:
        if NO_SPACE_MARKER in result.stderr:
            raise no_space(_output_dir(args))
        raise AudioError(f"{context}: {failure_reason(result.stderr)}")
    return result


def _output_dir(args: Sequence[str]) -> Path | None:
    """The directory of the last file ffmpeg was told to write (None if it writes none)."""
    outputs = [a for i, a in enumerate(args) if a.startswith("file:") and (i == 0 or args[i - 1] != "-i")]
    return Path(outputs[-1].removeprefix("file:")).parent if outputs else None


def _run(command: list[str], timeout_s: float, progress: ProgressFn | None) -> tuple[int, bytes, bytes]:
    """Run command to the end or the timeout, feeding stdout's `out_time_us` lines to progress."""
    if progress is None:
        done = subprocess.run(
            command, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout_s, check=False
        )
        return done.returncode, done.stdout, done.stderr
    with subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        expired = threading.Event()

        def expire() -> None:
            expired.set()
            proc.kill()

        timer = threading.Timer(timeout_s, expire)
        errors: list[bytes] = []
        reader = threading.Thread(target=_drain, args=(proc.stderr, errors), daemon=True)
        timer.start()
        reader.start()
        try:
            stdout = _follow(proc.stdout, progress)
            returncode = proc.wait()
        finally:
            timer.cancel()
            if proc.poll() is None:
                proc.kill()
            reader.join()
    if expired.is_set():
        raise subprocess.TimeoutExpired(command, timeout_s)
    return returncode, stdout, b"".join(errors)


def _drain(stream: IO[bytes], into: list[bytes]) -> None:
    """Read a stream to its end (a thread, so a full stderr pipe never blocks ffmpeg)."""
    into.append(stream.read())


def _follow(stream: IO[bytes], progress: ProgressFn) -> bytes:
    """Every line of stream, telling progress each media time reported."""
    lines: list[bytes] = []
    for line in stream:
        lines.append(line)
        found = _OUT_TIME.match(line.strip())
        if found:
            progress(int(found.group(1)) / 1e6)
    return b"".join(lines)


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
    return _last_out_time_ms(result.stdout)


def measure(path: Path, *, context: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> Measurement:
    """Decode a file through ebur128: its length, integrated loudness and true peak."""
    meter = "ebur128=peak=true:framelog=quiet"
    args = [*input_args(path), "-map", "0:a:0", "-af", meter, "-f", "null", "-"]
    result = run_ffmpeg([*args, "-progress", "pipe:1"], context=context, timeout_s=timeout_s)
    return Measurement(_last_out_time_ms(result.stdout), parse_loudness(result.stderr, context=context))


def _last_out_time_ms(progress_report: bytes) -> int:
    """The last media time of a `-progress` report, in milliseconds (0 if none)."""
    times = _OUT_TIME.findall(progress_report)
    return round(int(times[-1]) / 1000) if times else 0


def parse_loudness(stderr: str, *, context: str) -> Loudness:
    """The last ebur128 summary of a log; AudioError if there is none."""
    summaries = list(_SUMMARY.finditer(stderr))
    if not summaries:
        raise AudioError(f"{context}: ffmpeg printed no loudness summary")
    summary = stderr[summaries[-1].end() :]
    integrated = _INTEGRATED.search(summary)
    if integrated is None:
        raise AudioError(f"{context}: ffmpeg printed no integrated loudness")
    true_peak, sample_peak = _TRUE_PEAK.search(summary), _SAMPLE_PEAK.search(summary)
    return Loudness(
        integrated_lufs=_level(integrated.group(1)),
        true_peak_dbtp=_level(true_peak.group(1)) if true_peak else None,
        sample_peak_dbfs=_level(sample_peak.group(1)) if sample_peak else None,
    )


def _level(text: str) -> float:
    """A level in dB as printed by ebur128, with -inf kept finite at the gate."""
    value = float(text)
    return max(value, SILENCE_FLOOR_LUFS * 2) if not math.isnan(value) else SILENCE_FLOOR_LUFS * 2


def parse_silences(stderr: str, instance: str | None = None) -> list[tuple[float, float | None]]:
    """The (start, end) of each silence a silencedetect reported (only `silencedetect@instance`'s
    if named); end None if the silence ran to the end."""
    tag = f"[silencedetect@{instance} @ " if instance else ""
    lines = "\n".join(line for line in stderr.splitlines() if line.startswith(tag))
    silences: list[tuple[float, float | None]] = []
    for kind, value in _SILENCE.findall(lines):
        if kind == "start":
            silences.append((float(value), None))
        elif silences and silences[-1][1] is None:
            silences[-1] = (silences[-1][0], float(value))
    return silences


def find_marker(stderr: str, markers: Sequence[str]) -> str | None:
    """The first log line (untagged) that contains one of the markers."""
    for line in stderr.splitlines():
        if any(marker in line for marker in markers):
            return _TAG.sub("", line).strip()
    return None
