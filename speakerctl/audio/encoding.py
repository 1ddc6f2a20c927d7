"""Encoding the processed mix once per delivery format, and measuring what came out.

All renditions come from one ffmpeg run (one decoder of the mix, one encoder thread per format),
bit-exact, so the same mix always gives the same bytes. Each rendition is then decoded through
ebur128 to read its length, integrated loudness and true peak: what a horn will actually play.

A codec can move the loudness (Opus at 24 kbps in VoIP mode drops some of the energy of noisy
sounds) or overshoot the peaks; a `Correction` gives one rendition its own gain and limiter on
the next attempt, leaving the others as they are.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from speakerctl.audio import ffmpeg
from speakerctl.audio.formats import EncodedAudio, Format
from speakerctl.audio.processing import LIMITER_FLOOR_DBFS, PCM_BYTES, RATE_HZ, limiter, timeout_for
from speakerctl.errors import AudioError

PEAK_STEP_DB = 0.5
"""Extra room taken, beyond the measured excess, when a rendition's true peak is too high."""


@dataclass(frozen=True, slots=True)
class Correction:
    """A rendition's own gain and limiter ceiling, on top of the shared mix (None: none)."""

    gain_db: float = 0.0
    ceiling_dbfs: float | None = None

    @property
    def neutral(self) -> bool:
        """Whether the rendition is encoded from the mix as it is."""
        return self.gain_db == 0 and self.ceiling_dbfs is None

    def chain(self) -> str:
        """The filters that apply it (a null filter when neutral)."""
        if self.neutral:
            return "anull"
        ceiling = LIMITER_FLOOR_DBFS if self.ceiling_dbfs is None else self.ceiling_dbfs
        return f"volume={self.gain_db:.3f}dB,{limiter(ceiling)}"

    def after(self, peak_excess_db: float, loudness_miss_lu: float, base_ceiling_dbfs: float) -> Correction:
        """The next correction, given how far the last rendition was over the ceiling and off target."""
        ceiling = base_ceiling_dbfs if self.ceiling_dbfs is None else self.ceiling_dbfs
        if peak_excess_db > 0:
            ceiling -= peak_excess_db + PEAK_STEP_DB
        return Correction(self.gain_db + loudness_miss_lu, ceiling)


NEUTRAL = Correction()


def encode(
    mix: Path,
    formats: Sequence[Format],
    tmp: Path,
    *,
    context: str,
    corrections: Sequence[Correction] | None = None,
    progress: ffmpeg.ProgressFn | None = None,
) -> list[Path]:
    """Encode 16-bit mono PCM into every format in one ffmpeg run; the files, in order."""
    corrections = corrections or [NEUTRAL] * len(formats)
    outputs = [tmp / f"encoded-{f.codec}.{f.spec.container}" for f in formats]
    args = [*ffmpeg.raw_input_args(mix, "s16le", RATE_HZ)]
    if any(not c.neutral for c in corrections):
        splits = "".join(f"[s{i}]" for i in range(len(formats)))
        branches = [f"[s{i}]{c.chain()}[o{i}]" for i, c in enumerate(corrections)]
        args += ["-filter_complex", ";".join([f"[0:a]asplit={len(formats)}{splits}", *branches])]
        sources = [f"[o{i}]" for i in range(len(formats))]
    else:
        sources = ["0:a"] * len(formats)
    for fmt, out, source in zip(formats, outputs, sources, strict=True):
        args += ["-map", source, "-fflags", "+bitexact", "-flags:a", "+bitexact", *fmt.output_args()]
        args += ["-y", ffmpeg.file_url(out)]
    media_s = mix.stat().st_size / PCM_BYTES / RATE_HZ
    result = ffmpeg.run_ffmpeg(args, context=context, timeout_s=timeout_for(media_s), progress=progress)
    if ffmpeg.EMPTY_OUTPUT_MARKER in result.stderr:
        raise AudioError(f"{context}: the encoder produced nothing")
    return outputs


def measure_all(
    outputs: Sequence[Path], formats: Sequence[Format], *, context: str, media_s: float, source_name: str
) -> list[EncodedAudio]:
    """Decode and measure every output, in parallel (one decoder each: cores idle otherwise)."""
    timeout_s = timeout_for(media_s)
    with ThreadPoolExecutor(max_workers=len(outputs)) as pool:
        measured = list(pool.map(lambda p: ffmpeg.measure(p, context=context, timeout_s=timeout_s), outputs))
    return [
        _rendition(out, fmt, m, source_name) for fmt, out, m in zip(formats, outputs, measured, strict=True)
    ]


def _rendition(out: Path, fmt: Format, measured: ffmpeg.Measurement, source_name: str) -> EncodedAudio:
    """An encoded file and its measurements as a rendition."""
    try:
        data = out.read_bytes()
    except OSError as exc:
        raise AudioError(f"cannot read the encoded {fmt.codec} ({exc.strerror or exc})") from exc
    return EncodedAudio.from_data(
        data,
        codec=fmt.codec,
        bitrate_kbps=fmt.bitrate_kbps,
        duration_ms=measured.duration_ms,
        source_name=source_name,
        loudness_lufs=round(measured.loudness.integrated_lufs, 1),
        true_peak_dbtp=measured.loudness.true_peak_dbtp,
    )
