"""The processing chain for horn speakers: check, decode, filter, measure, trim, level, limit.

Pass 1, `analyse()`: the first audio stream of a file is decoded, resampled to 48 kHz, mixed to
mono and band-limited (120 Hz–8 kHz for speech: a horn on a pole reproduces nothing below
~200 Hz, energy there only costs amplifier headroom, and Opus at 24 kbps carries nothing above
8 kHz, so what is measured here is what the decoder gives back); ebur128 measures its integrated
loudness and silencedetect finds the silence at both ends. The result is float PCM in a scratch directory.
Silence is whatever stays `silence_margin_db` below the programme's loudness: silencedetect runs
at a few fixed thresholds in the same pass, and the highest one far enough below is used, so a
quiet phone recording keeps its soft onsets and a loud studio file loses its hiss too.

Pass 2, `level()`: the sound between the trimmed ends gets a gain and a look-ahead limiter
(`limiter_margin_db` under the true-peak ceiling, for inter-sample peaks and codec overshoot),
and is measured again; the gain is corrected (secant steps) until the integrated loudness is
within `tolerance_lu` of the target, since limiting the peaks of speech lowers its loudness.

A truncated file is refused rather than imported short: a bulletin that stops mid-sentence
must not go on air. Truncation is seen when the container declares a length (an MP3 Xing/Info
frame, a FLAC or MP4 header) and clearly less than that decodes, or when the demuxer flags a
packet as corrupt (a WAV whose data chunk runs past the end of the file). A file that declares
no length (an MP3 without a Xing frame) or whose length is read from its last page (Ogg) cannot
be told from a shorter recording once cut, and imports as much as decodes.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

from speakerctl.audio import ffmpeg
from speakerctl.errors import AudioError

RATE_HZ = 48000
"""Every part is processed at the Opus rate, mono."""
FLOAT_BYTES = 4
PCM_BYTES = 2
DEFAULT_MAX_DURATION_S = 1800.0
LIMIT_SLACK_MS = 50
"""A decoded length may pass the limit by up to a codec frame of padding."""
TRUNCATION_TOLERANCE_S = 0.5
TRUNCATION_TOLERANCE_RATIO = 0.01
MIN_SOUND_S = 0.1
"""Less than this between the trimmed ends counts as all silence."""
SILENCE_THRESHOLDS_DBFS = (-40, -45, -50, -55, -60)
"""Where silencedetect listens in pass 1, highest first."""
MAX_LEVEL_PASSES = 5
GAIN_RANGE_DB = (-40.0, 50.0)
LIMITER_FLOOR_DBFS = -24.0
"""alimiter accepts a ceiling down to 1/16 of full scale."""


@dataclass(frozen=True, slots=True)
class Processing:
    """The numbers of the chain, checked once where they enter."""

    target_lufs: float = -16.0
    true_peak_dbtp: float = -2.0
    highpass_hz: int = 120
    lowpass_hz: int = 8000
    max_duration_s: float = DEFAULT_MAX_DURATION_S
    silence_margin_db: float = 25.0
    silence_min_s: float = 0.2
    edge_pad_s: float = 0.15
    tolerance_lu: float = 0.1
    limiter_margin_db: float = 2.5
    """The limiter's ceiling sits this far below the true-peak ceiling (inter-sample peaks and
    codec overshoot); a rendition still over the ceiling gets a lower one of its own."""

    def __post_init__(self) -> None:
        _check_between(self.target_lufs, -40, -5, "loudness target (LUFS)")
        _check_between(self.true_peak_dbtp, -12, 0, "true-peak ceiling (dBTP)")
        _check_between(self.highpass_hz, 20, 400, "high-pass frequency (Hz)")
        _check_between(self.lowpass_hz, 3000, RATE_HZ // 2, "low-pass frequency (Hz)")
        _check_between(self.max_duration_s, 1, 24 * 3600, "max_duration_s")
        _check_between(self.silence_margin_db, 10, 50, "silence margin (dB)")
        _check_between(self.tolerance_lu, 0.05, 1, "loudness tolerance (LU)")

    @property
    def limiter_ceiling_dbfs(self) -> float:
        """Where the limiter starts: the true-peak ceiling less the margin."""
        return self.true_peak_dbtp - self.limiter_margin_db


def _check_between(value: float, lo: float, hi: float, what: str) -> None:
    """AudioError unless value is a finite number within [lo, hi]."""
    if not (math.isfinite(value) and lo <= value <= hi):
        raise AudioError(f"{what} must be between {lo:g} and {hi:g}, not {value}")


@dataclass(frozen=True, slots=True)
class Analysis:
    """A decoded, filtered part: float PCM on disk, its loudness and where its sound begins and ends."""

    pcm: Path
    source_name: str
    duration_s: float
    loudness_lufs: float
    start_s: float
    end_s: float

    @property
    def trimmed_s(self) -> float:
        """How long the part plays once its silent ends are trimmed."""
        return self.end_s - self.start_s


@dataclass(frozen=True, slots=True)
class Leveled:
    """A part at the target loudness: 16-bit PCM at RATE_HZ, mono, on disk."""

    pcm: Path
    gain_db: float
    loudness_lufs: float
    duration_s: float


def context_for(path: Path) -> str:
    """How errors about a source file begin."""
    return f"cannot import {path.name!r}"


def check_file(path: Path, context: str) -> None:
    """Refuse a missing, unreadable, non-regular or empty file before ffmpeg sees it."""
    try:
        stat = path.stat()
        if path.is_file():
            os.close(os.open(path, os.O_RDONLY))
    except FileNotFoundError as exc:
        raise AudioError(f"{context}: no such file") from exc
    except OSError as exc:
        raise AudioError(f"{context}: cannot be read ({exc.strerror or exc})") from exc
    if not path.is_file():
        raise AudioError(f"{context}: not a regular file")
    if stat.st_size == 0:
        raise AudioError(f"{context}: the file is empty (0 bytes)")


def analyse(
    source: Path,
    out: Path,
    processing: Processing,
    *,
    name: str | None = None,
    progress: ffmpeg.ProgressFn | None = None,
) -> Analysis:
    """Check, decode, filter and measure a source file into float PCM at `out` (pass 1)."""
    name = name or source.name
    context = f"cannot import {name!r}"
    check_file(source, context)
    info = ffmpeg.probe(source, context=context)
    _check_probe(info, processing.max_duration_s, context)
    log = _decode(source, out, processing, context, progress)
    duration_s = out.stat().st_size / FLOAT_BYTES / RATE_HZ
    _check_result(info, log, duration_s, processing.max_duration_s, context)
    loudness = ffmpeg.parse_loudness(log, context=context)
    threshold = silence_threshold(loudness.integrated_lufs, processing)
    start, end = _sound_span(ffmpeg.parse_silences(log, f"n{-threshold}"), duration_s, processing)
    if loudness.silent or end - start < MIN_SOUND_S:
        floor = SILENCE_THRESHOLDS_DBFS[-1]
        raise AudioError(f"{context}: the file is all silence (nothing above {floor:g} dBFS)")
    return Analysis(out, name, duration_s, loudness.integrated_lufs, start, end)


def _check_probe(info: ffmpeg.Probe, max_duration_s: float, context: str) -> None:
    """Refuse a file with no audio stream, or one that declares itself too long."""
    if not info.has_audio:
        raise AudioError(f"{context}: no audio stream in this {info.format_name} file")
    declared = info.declared_duration_s
    if declared is not None and declared * 1000 > max_duration_s * 1000 + LIMIT_SLACK_MS:
        raise too_long(context, f"{declared:.1f} s long", max_duration_s)


def _decode(
    source: Path,
    out: Path,
    processing: Processing,
    context: str,
    progress: ffmpeg.ProgressFn | None,
) -> str:
    """Decode, resample, downmix, high-pass and measure source into float PCM; the log."""
    limit_s = processing.max_duration_s
    chain = ",".join(
        (
            f"aresample={RATE_HZ}",
            "aformat=sample_fmts=flt:channel_layouts=mono",
            f"highpass=f={processing.highpass_hz}",
            f"lowpass=f={processing.lowpass_hz}",
            "ebur128=framelog=quiet",
            *(
                f"silencedetect@n{-level}=n={level}dB:d={processing.silence_min_s:g}"
                for level in SILENCE_THRESHOLDS_DBFS
            ),
        )
    )
    args = [
        *ffmpeg.input_args(source),
        *("-map", "0:a:0", "-map_metadata", "-1", "-map_chapters", "-1"),
        *("-af", chain, "-t", f"{limit_s + 1:.3f}"),
        *("-c:a", "pcm_f32le", "-f", "f32le", "-y", ffmpeg.file_url(out)),
    ]
    result = ffmpeg.run_ffmpeg(args, context=context, timeout_s=timeout_for(limit_s), progress=progress)
    if ffmpeg.EMPTY_OUTPUT_MARKER in result.stderr or not out.exists():
        raise _no_samples(context)
    return result.stderr


def silence_threshold(loudness_lufs: float, processing: Processing) -> int:
    """The highest detection threshold at least the margin below the programme (else the lowest)."""
    below = loudness_lufs - processing.silence_margin_db
    return next((t for t in SILENCE_THRESHOLDS_DBFS if t <= below), SILENCE_THRESHOLDS_DBFS[-1])


def timeout_for(seconds: float) -> float:
    """Time allowed for one pass over this much audio (ffmpeg runs 100-500x real time)."""
    return ffmpeg.DEFAULT_TIMEOUT_S + seconds / 10


def _check_result(
    info: ffmpeg.Probe, log: str, duration_s: float, max_duration_s: float, context: str
) -> None:
    """Refuse a decode that came out empty, too long, corrupt or shorter than declared."""
    if duration_s == 0:
        raise _no_samples(context)
    if duration_s * 1000 > max_duration_s * 1000 + LIMIT_SLACK_MS:
        raise too_long(context, "longer than that", max_duration_s)
    corrupt = ffmpeg.find_marker(info.stderr + log, ffmpeg.CORRUPTION_MARKERS)
    if corrupt is not None:
        raise _truncated(context, f"ffmpeg: {corrupt}")
    declared = info.declared_duration_s
    if declared is not None and declared - duration_s > _truncation_tolerance_s(declared):
        raise _truncated(context, f"{declared:.2f} s declared, {duration_s:.2f} s decodes")


def _truncation_tolerance_s(declared_s: float) -> float:
    """How much shorter than declared a decode may be before the file counts as truncated."""
    return max(TRUNCATION_TOLERANCE_S, declared_s * TRUNCATION_TOLERANCE_RATIO)


def _sound_span(
    silences: list[tuple[float, float | None]], duration_s: float, processing: Processing
) -> tuple[float, float]:
    """Where sound begins and ends, keeping `edge_pad_s` of the silence at each end."""
    start, end = 0.0, duration_s
    if silences and silences[0][0] <= 1 / RATE_HZ * 10:
        start = duration_s if silences[0][1] is None else silences[0][1]
    last_start, last_end = silences[-1] if silences else (duration_s, None)
    if silences and (last_end is None or last_end >= duration_s - 0.02):
        end = last_start
    if end <= start:
        return start, start
    return max(0.0, start - processing.edge_pad_s), min(duration_s, end + processing.edge_pad_s)


def level(
    part: Analysis,
    out: Path,
    processing: Processing,
    ceiling_dbfs: float,
    *,
    context: str,
    progress: ffmpeg.ProgressFn | None = None,
) -> Leveled:
    """Trim, gain and limit a part to the target loudness, repeating pass 2 until it is there."""
    target = processing.target_lufs
    gain = _clamp_gain(target - part.loudness_lufs)
    tried: list[tuple[float, float]] = []
    for _ in range(MAX_LEVEL_PASSES):
        measured = _apply(part, out, gain, ceiling_dbfs, context, progress)
        tried.append((gain, measured))
        if abs(measured - target) <= processing.tolerance_lu:
            break
        gain = _next_gain(tried, target)
    duration_s = out.stat().st_size / PCM_BYTES / RATE_HZ
    return Leveled(out, tried[-1][0], tried[-1][1], duration_s)


def _clamp_gain(gain_db: float) -> float:
    """A gain within GAIN_RANGE_DB."""
    lo, hi = GAIN_RANGE_DB
    return min(max(gain_db, lo), hi)


def _next_gain(tried: list[tuple[float, float]], target: float) -> float:
    """The next gain to try: a secant step through the last two tries, else a plain correction."""
    gain, measured = tried[-1]
    step = target - measured
    if len(tried) >= 2:
        (g0, m0), (g1, m1) = tried[-2], tried[-1]
        slope = (m1 - m0) / (g1 - g0) if g1 != g0 else 0.0
        if 0.05 <= slope <= 2:
            step /= slope
    return _clamp_gain(gain + step)


def _apply(
    part: Analysis,
    out: Path,
    gain_db: float,
    ceiling_dbfs: float,
    context: str,
    progress: ffmpeg.ProgressFn | None,
) -> float:
    """Write the trimmed, gained, limited part as 16-bit PCM; its integrated loudness."""
    chain = ",".join(
        (
            f"atrim=start={part.start_s:.6f}:end={part.end_s:.6f}",
            "asetpts=N/SR/TB",
            f"volume={gain_db:.3f}dB",
            limiter(ceiling_dbfs),
            "ebur128=framelog=quiet",
        )
    )
    args = [
        *ffmpeg.raw_input_args(part.pcm, "f32le", RATE_HZ),
        *("-af", chain, "-c:a", "pcm_s16le", "-f", "s16le", "-y", ffmpeg.file_url(out)),
    ]
    result = ffmpeg.run_ffmpeg(
        args, context=context, timeout_s=timeout_for(part.duration_s), progress=progress
    )
    return ffmpeg.parse_loudness(result.stderr, context=context).integrated_lufs


def limiter(ceiling_dbfs: float) -> str:
    """A look-ahead limiter (5 ms, delay compensated) holding samples under the ceiling."""
    ceiling = 10 ** (max(ceiling_dbfs, LIMITER_FLOOR_DBFS) / 20)
    return f"alimiter=limit={ceiling:.5f}:attack=5:release=50:level=0:latency=1"


def too_long(context: str, actual: str, max_duration_s: float) -> AudioError:
    """The error for audio over the duration limit."""
    hint = "split the recording into shorter bulletins"
    return AudioError(f"{context}: the limit is {max_duration_s:g} s and it is {actual}", hint=hint)


def _no_samples(context: str) -> AudioError:
    """The error for a file with an audio stream but nothing in it."""
    return AudioError(f"{context}: the file holds no audio samples")


def _truncated(context: str, detail: str) -> AudioError:
    """The error for a file that is cut short or damaged."""
    hint = "the file is cut short or damaged: copy or export it again"
    return AudioError(f"{context}: truncated or corrupt ({detail})", hint=hint)
