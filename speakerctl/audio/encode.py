"""Import an audio file as broadcast-ready content, and generate test signals.

An import checks the file, probes it, encodes its first audio stream (mono, resampled) and
measures the result by decoding it again. The encode is bit-exact (no encoder version, fixed
Ogg serial), so the same input gives the same bytes and the same sha256.

A truncated file is refused rather than imported short: a bulletin that stops mid-sentence
must not go on air. Truncation is seen when the container declares a length (an MP3 Xing/Info
frame, a FLAC or MP4 header) and clearly less than that decodes, or when the demuxer flags a
packet as corrupt (a WAV whose data chunk runs past the end of the file). A file that declares
no length (an MP3 without a Xing frame) or whose length is read from its last page (Ogg) cannot
be told from a shorter recording once cut, and imports as much as decodes.
"""

from __future__ import annotations

import hashlib
import math
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from speakerctl.audio import ffmpeg
from speakerctl.errors import AudioError

DEFAULT_MAX_DURATION_S = 1800.0
LIMIT_SLACK_MS = 50
"""Encoded length may pass the source's by up to a codec frame of padding."""
TRUNCATION_TOLERANCE_S = 0.5
TRUNCATION_TOLERANCE_RATIO = 0.01
GENERATED_MAX_S = 3600.0
"""Cap on generated signals: lavfi sources read a zero or huge duration as "forever"."""
TONE_SAMPLE_RATE = 48000
SPEECHLIKE_SAMPLE_RATE = 16000
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_MP3_MPEG2_KBPS = (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160)


@dataclass(frozen=True, slots=True)
class CodecSpec:
    """How one delivery codec is encoded: container, sample rate, valid bitrates, encoder flags."""

    codec: str
    container: str
    sample_rate_hz: int
    bitrates_kbps: Sequence[int]
    encoder_args: tuple[str, ...]

    def output_args(self, bitrate_kbps: int) -> list[str]:
        """ffmpeg output options: mono at the codec's rate, the encoder, the container."""
        rate = ["-ac", "1", "-ar", str(self.sample_rate_hz)]
        return [*rate, *self.encoder_args, "-b:a", f"{bitrate_kbps}k", "-f", self.container]

    def check_bitrate(self, bitrate_kbps: int) -> None:
        """Raise AudioError unless the encoder accepts this bitrate for mono."""
        if bitrate_kbps not in self.bitrates_kbps:
            raise AudioError(
                f"{bitrate_kbps} kbps is not a valid {self.codec} bitrate",
                hint=f"use {self.describe_bitrates()} kbps",
            )

    def describe_bitrates(self) -> str:
        """The valid bitrates in words: a span for a range, else a list."""
        valid = self.bitrates_kbps
        if isinstance(valid, range):
            return f"{valid[0]}–{valid[-1]}"
        return ", ".join(str(kbps) for kbps in valid)


CODECS: dict[str, CodecSpec] = {
    "opus": CodecSpec(
        "opus", "ogg", 48000, range(6, 257), ("-c:a", "libopus", "-application", "voip")
    ),
    # MPEG-2 layer III at 24 kHz: the low bitrates speech needs, and horns stop below 12 kHz anyway.
    "mp3": CodecSpec("mp3", "mp3", 24000, _MP3_MPEG2_KBPS, ("-c:a", "libmp3lame")),
}


@dataclass(frozen=True, slots=True)
class EncodedAudio:
    """One encoded rendition of an imported file, identified by the sha256 of its bytes."""

    data: bytes = field(repr=False)
    sha256: str
    codec: str
    container: str
    bitrate_kbps: int
    duration_ms: int
    size: int
    source_name: str

    def __post_init__(self) -> None:
        spec = CODECS.get(self.codec)
        if spec is None or spec.container != self.container:
            raise AudioError(f"unknown codec/container {self.codec}/{self.container}")
        if not _SHA256.match(self.sha256):
            raise AudioError(f"sha256 {self.sha256!r} is not 64 lowercase hex digits")
        if self.size != len(self.data) or self.duration_ms < 0:
            raise AudioError(f"size {self.size} or duration {self.duration_ms} ms is inconsistent")

    @classmethod
    def from_data(
        cls, data: bytes, *, codec: str, bitrate_kbps: int, duration_ms: int, source_name: str
    ) -> EncodedAudio:
        """Wrap encoded bytes, computing their hash and size."""
        digest = hashlib.sha256(data).hexdigest()
        container = CODECS[codec].container
        return cls(
            data, digest, codec, container, bitrate_kbps, duration_ms, len(data), source_name
        )

    @property
    def extension(self) -> str:
        """File extension for this content, without the dot."""
        return self.container


def import_audio(
    path: Path,
    *,
    codec: str = "opus",
    bitrate_kbps: int = 24,
    max_duration_s: float = DEFAULT_MAX_DURATION_S,
) -> EncodedAudio:
    """Encode an audio file for the fleet; AudioError naming the file if it cannot be used."""
    spec = codec_spec(codec, bitrate_kbps)
    _check_limit(max_duration_s)
    context = f"cannot import {path.name!r}"
    _check_file(path, context)
    info = ffmpeg.probe(path, context=context)
    _check_probe(info, max_duration_s, context)
    data, log, duration_ms = _encode_measured(path, spec, bitrate_kbps, max_duration_s, context)
    _check_result(info, log, duration_ms, max_duration_s, context)
    return EncodedAudio.from_data(
        data, codec=codec, bitrate_kbps=bitrate_kbps, duration_ms=duration_ms, source_name=path.name
    )


def codec_spec(codec: str, bitrate_kbps: int) -> CodecSpec:
    """The spec of a delivery codec, after checking the bitrate suits it."""
    spec = CODECS.get(codec)
    if spec is None:
        raise AudioError(f"unsupported codec {codec!r}", hint=f"use one of {', '.join(CODECS)}")
    spec.check_bitrate(bitrate_kbps)
    return spec


def _check_limit(max_duration_s: float) -> None:
    """Refuse a duration limit that is not a positive number of seconds."""
    if not (math.isfinite(max_duration_s) and max_duration_s > 0):
        raise AudioError(
            f"max_duration_s must be a positive number of seconds, not {max_duration_s}"
        )


def _check_file(path: Path, context: str) -> None:
    """Refuse a missing, unreadable, non-regular or empty file before ffmpeg sees it."""
    try:
        stat = path.stat()
    except FileNotFoundError as exc:
        raise AudioError(f"{context}: no such file") from exc
    except OSError as exc:
        raise AudioError(f"{context}: {exc.strerror or exc}") from exc
    if not path.is_file():
        raise AudioError(f"{context}: not a regular file")
    if stat.st_size == 0:
        raise AudioError(f"{context}: the file is empty (0 bytes)")


def _check_probe(info: ffmpeg.Probe, max_duration_s: float, context: str) -> None:
    """Refuse a file with no audio stream, or one that declares itself too long."""
    if not info.has_audio:
        raise AudioError(f"{context}: no audio stream in this {info.format_name} file")
    declared = info.declared_duration_s
    if declared is not None and declared * 1000 > max_duration_s * 1000 + LIMIT_SLACK_MS:
        raise _too_long(context, f"{declared:.1f} s long", max_duration_s)


def _encode_measured(
    source: Path, spec: CodecSpec, bitrate_kbps: int, limit_s: float, context: str
) -> tuple[bytes, str, int]:
    """Encode source in a scratch directory; its bytes, ffmpeg's log and its decoded length."""
    try:
        with tempfile.TemporaryDirectory(prefix="speakerctl-audio-") as tmp:
            out = Path(tmp) / f"encoded.{spec.container}"
            log = _encode(source, out, spec, bitrate_kbps, limit_s, context)
            duration_ms = ffmpeg.decoded_duration_ms(out, context=context)
            return out.read_bytes(), log, duration_ms
    except OSError as exc:
        raise AudioError(f"{context}: scratch space failed ({exc.strerror or exc})") from exc


def _encode(
    source: Path, out: Path, spec: CodecSpec, bitrate_kbps: int, limit_s: float, context: str
) -> str:
    """Encode the first audio stream of source into out, stopping past the limit; the log."""
    args = [
        *ffmpeg.input_args(source),
        *("-map", "0:a:0", "-map_metadata", "-1", "-map_chapters", "-1"),
        *("-fflags", "+bitexact", "-flags:a", "+bitexact"),
        *("-t", f"{limit_s + 1:.3f}"),
        *spec.output_args(bitrate_kbps),
        *("-y", ffmpeg.file_url(out)),
    ]
    log = ffmpeg.run_ffmpeg(args, context=context, timeout_s=_timeout_s(limit_s)).stderr
    if ffmpeg.EMPTY_OUTPUT_MARKER in log:
        raise _no_samples(context)
    return log


def _timeout_s(limit_s: float) -> float:
    """Time allowed to encode up to limit_s of audio (ffmpeg runs 100-500x real time)."""
    return ffmpeg.DEFAULT_TIMEOUT_S + limit_s / 10


def _check_result(
    info: ffmpeg.Probe, log: str, duration_ms: int, max_duration_s: float, context: str
) -> None:
    """Refuse an encode that came out empty, too long, corrupt or shorter than declared."""
    if duration_ms == 0:
        raise _no_samples(context)
    if duration_ms > max_duration_s * 1000 + LIMIT_SLACK_MS:
        raise _too_long(context, "longer than that", max_duration_s)
    corrupt = ffmpeg.find_marker(info.stderr + log, ffmpeg.CORRUPTION_MARKERS)
    if corrupt is not None:
        raise _truncated(context, f"ffmpeg: {corrupt}")
    declared = info.declared_duration_s
    if declared is not None and declared - duration_ms / 1000 > _truncation_tolerance_s(declared):
        raise _truncated(context, f"{declared:.2f} s declared, {duration_ms / 1000:.2f} s decodes")


def _truncation_tolerance_s(declared_s: float) -> float:
    """How much shorter than declared a decode may be before the file counts as truncated."""
    return max(TRUNCATION_TOLERANCE_S, declared_s * TRUNCATION_TOLERANCE_RATIO)


def _too_long(context: str, actual: str, max_duration_s: float) -> AudioError:
    """The error for a file over the duration limit."""
    hint = "split the recording into shorter bulletins"
    return AudioError(f"{context}: the limit is {max_duration_s:g} s and it is {actual}", hint=hint)


def _no_samples(context: str) -> AudioError:
    """The error for a file with an audio stream but nothing in it."""
    return AudioError(f"{context}: the file holds no audio samples")


def _truncated(context: str, detail: str) -> AudioError:
    """The error for a file that is cut short or damaged."""
    hint = "the file is cut short or damaged: copy or export it again"
    return AudioError(f"{context}: truncated or corrupt ({detail})", hint=hint)


def generate_tone(seconds: float, *, freq_hz: float = 440, path: Path) -> Path:
    """Write a mono 16-bit 48 kHz WAV sine tone to path, using ffmpeg's lavfi sine source."""
    _check_generated(seconds)
    if not (0 < freq_hz < TONE_SAMPLE_RATE / 2):
        raise AudioError(f"tone frequency must be between 0 and {TONE_SAMPLE_RATE // 2} Hz")
    source = f"sine=frequency={freq_hz:g}:sample_rate={TONE_SAMPLE_RATE}:duration={seconds:.3f}"
    return _write_wav(["-f", "lavfi", "-i", source], path)


def generate_speechlike(seconds: float, path: Path) -> Path:
    """Write a mono 16 kHz WAV that sounds vaguely like speech: a gliding buzz in syllables."""
    _check_generated(seconds)
    pitch = "(140+30*sin(2*PI*0.7*t))"
    voice = f"(sin(2*PI*{pitch}*t)+0.5*sin(4*PI*{pitch}*t)+0.25*sin(6*PI*{pitch}*t))"
    syllables = "pow(sin(PI*4.5*t),2)*gt(sin(2*PI*0.35*t),-0.7)"
    expression = f"0.4*{voice}*{syllables}+0.02*(2*random(0)-1)"
    source = f"aevalsrc='{expression}':s={SPEECHLIKE_SAMPLE_RATE}:d={seconds:.3f}"
    return _write_wav(["-f", "lavfi", "-i", source], path)


def _check_generated(seconds: float) -> None:
    """Refuse a generated length that is not in (0, GENERATED_MAX_S] seconds."""
    if not (math.isfinite(seconds) and 0 < seconds <= GENERATED_MAX_S):
        raise AudioError(f"generated audio must last 0–{GENERATED_MAX_S:g} s, not {seconds}")


def _write_wav(source_args: list[str], path: Path) -> Path:
    """Render a lavfi source to a mono 16-bit WAV at path."""
    args = [*source_args, "-ac", "1", "-c:a", "pcm_s16le", "-fflags", "+bitexact", "-f", "wav"]
    ffmpeg.run_ffmpeg([*args, "-y", ffmpeg.file_url(path)], context=f"cannot write {path.name!r}")
    return path
