"""Any source in, broadcast-ready renditions out: the whole chain for one bulletin.

    items ──► sources ──► analyse (pass 1) ──► level (pass 2…) ──► compose ──► encode ──► measure
    (chime,   (WAV from    decode, 48 kHz       trim, gain,          pydub:      one ffmpeg,  decode each
     speech,   espeak-ng,  mono, band-pass,     limiter, until       gaps,       one output   rendition:
     files)    the chime)  loudness, silence    at the target        fades       per codec    LUFS, dBTP

Each part is levelled on its own, so a chime, a synthesised intro and a phone recording all come
out equally loud. A decoded rendition whose true peak passes the ceiling (codec overshoot), or
whose loudness misses the target by more than half a LU (a codec that drops energy), is encoded
again with its own gain and limiter (`encoding.Correction`), at most three times in all; the
renditions already in spec are kept.
Everything happens in a scratch directory that is removed whatever the outcome.
"""

from __future__ import annotations

import contextlib
import math
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from speakerctl.audio import ffmpeg, pcm, tts
from speakerctl.audio.encoding import NEUTRAL, Correction, encode, measure_all
from speakerctl.audio.formats import EncodedAudio, Format, codec_spec, profile
from speakerctl.audio.processing import (
    RATE_HZ,
    Analysis,
    Leveled,
    Processing,
    analyse,
    level,
    too_long,
)
from speakerctl.audio.sequence import Chime, Composition, Item, Recording, Silence, Speech
from speakerctl.audio.signals import write_default_chime
from speakerctl.errors import AudioError, NoSpace
from speakerctl.files import display_name, no_space, private_dir

ATTEMPTS = 3
LOUDNESS_RETRY_LU = 0.5
"""A rendition further than this from the target is encoded again with its own gain."""
LOUDNESS_LIMIT_LU = 1.0
"""The loudness promise: the last attempt must land within this of the target."""
FADE_MS = 10
"""Fades at the joins of a composition, so no item starts or stops with a click."""

DEFAULT_PROCESSING = Processing()
Progress = Callable[[float], None]
"""Told the fraction of an import done so far, from 0 to 1."""


@dataclass(frozen=True, slots=True)
class Rendering:
    """A bulletin's renditions (the preferred codec first) and how the first one measures."""

    renditions: tuple[EncodedAudio, ...]
    source_name: str
    profile: str

    @property
    def primary(self) -> EncodedAudio:
        """The first rendition: what the library describes the bulletin by."""
        return self.renditions[0]


class _Meter:
    """Maps the stages of a run onto one fraction for a progress callback."""

    def __init__(self, report: Progress | None) -> None:
        self.report = report
        self.done = 0.0

    def span(self, width: float, media_s: float | None) -> ffmpeg.ProgressFn | None:
        """A callback for an ffmpeg run covering `width` of the whole over `media_s` seconds."""
        if self.report is None:
            return None
        start, report = self.done, self.report
        self.done = min(1.0, self.done + width)
        if not media_s:
            return None
        return lambda t: report(start + width * min(1.0, max(0.0, t / media_s)))

    def step(self, width: float) -> None:
        """Advance by `width` and report."""
        self.done = min(1.0, self.done + width)
        if self.report is not None:
            self.report(self.done)


def render(
    composition: Composition,
    codecs: Sequence[str],
    *,
    processing: Processing = DEFAULT_PROCESSING,
    chime: Path | None = None,
    scratch_dir: Path | None = None,
    progress: Progress | None = None,
) -> Rendering:
    """Render a composition once per codec (the preferred first); AudioError on any bad item."""
    chosen = profile(composition.profile)
    formats = chosen.formats(codecs)
    if not formats:
        raise AudioError("no codec to encode to", hint="check the hardware profiles of the fleet")
    processing = replace(processing, highpass_hz=chosen.highpass_hz, lowpass_hz=chosen.lowpass_hz)
    job = _Job(composition.items, composition.gap_s, processing, chime, _Meter(progress))
    with _scratch(scratch_dir) as tmp:
        renditions = job.run(formats, tmp, composition.source_name)
    return Rendering(renditions, composition.source_name, chosen.name)


def import_audio(
    path: Path,
    *,
    codec: str = "opus",
    bitrate_kbps: int = 24,
    max_duration_s: float | None = None,
    processing: Processing = DEFAULT_PROCESSING,
) -> EncodedAudio:
    """Process and encode one audio file in one codec; AudioError naming the file if unusable."""
    codec_spec(codec, bitrate_kbps)
    if max_duration_s is not None:
        processing = replace(processing, max_duration_s=max_duration_s)
    tuning = ("-application", "voip") if codec == "opus" else ()
    job = _Job((Recording(path),), 0.0, processing, None, _Meter(None))
    with _scratch(None) as tmp:
        return job.run((Format(codec, bitrate_kbps, tuning),), tmp, display_name(path))[0]


@contextlib.contextmanager
def _scratch(parent: Path | None) -> Iterator[Path]:
    """A scratch directory removed on the way out; AudioError if it cannot be made."""
    try:
        if parent is not None:
            private_dir(parent)
        holder = tempfile.TemporaryDirectory(prefix="speakerctl-audio-", dir=parent)
    except OSError as exc:
        raise AudioError(f"no scratch space for audio ({exc.strerror or exc})") from exc
    with holder as tmp:
        try:
            yield Path(tmp)
        except NoSpace as exc:
            raise no_space(Path(tmp).parent) from exc  # name the lasting directory, not the scratch


@dataclass(slots=True)
class _Job:
    """One run of the chain over a sequence of items."""

    items: tuple[Item, ...]
    gap_s: float
    processing: Processing
    chime: Path | None
    meter: _Meter

    def run(self, formats: Sequence[Format], tmp: Path, source_name: str) -> tuple[EncodedAudio, ...]:
        """Analyse every sounding item once, level and compose, then encode until in spec."""
        parts = self._analyse_all(tmp)
        self._check_total(parts)
        mix = self._compose(self._level_all(parts, tmp), tmp)
        base = self.processing.limiter_ceiling_dbfs
        corrections = {f: NEUTRAL for f in formats}
        done: dict[Format, EncodedAudio] = {}
        for attempt in range(ATTEMPTS):
            todo = [f for f in formats if f not in done]
            fixes = [corrections[f] for f in todo]
            encoded = self._encode(mix, todo, fixes, tmp, source_name, first=attempt == 0)
            for fmt, audio in zip(todo, encoded, strict=True):
                excess, miss = self._misses(audio)
                slack = LOUDNESS_LIMIT_LU if attempt == ATTEMPTS - 1 else LOUDNESS_RETRY_LU
                if excess <= 0 and abs(miss) <= slack:
                    done[fmt] = audio
                else:
                    corrections[fmt] = corrections[fmt].after(excess, _retry(miss), base)
            if len(done) == len(formats):
                return tuple(done[f] for f in formats)
        raise _out_of_spec(source_name, excess, miss, self.processing)

    def _misses(self, audio: EncodedAudio) -> tuple[float, float]:
        """(true peak over the ceiling, target minus loudness) of a rendition."""
        peak = -math.inf if audio.true_peak_dbtp is None else audio.true_peak_dbtp
        loudness = self.processing.target_lufs if audio.loudness_lufs is None else audio.loudness_lufs
        return peak - self.processing.true_peak_dbtp, self.processing.target_lufs - loudness

    def _analyse_all(self, tmp: Path) -> dict[Item, Analysis]:
        """Pass 1 for each distinct sounding item."""
        sounding = list(dict.fromkeys(i for i in self.items if not isinstance(i, Silence)))
        parts: dict[Item, Analysis] = {}
        for index, item in enumerate(sounding):
            source, name, media_s = self._source(item, tmp, index)
            span = self.meter.span(0.3 / len(sounding), media_s)
            parts[item] = analyse(
                source, tmp / f"part-{index}.f32", self.processing, name=name, progress=span
            )
        return parts

    def _source(self, item: Item, tmp: Path, index: int) -> tuple[Path, str, float | None]:
        """The file an item is read from, what to call it, and its length if known."""
        if isinstance(item, Speech):
            path = tts.synthesize(item.text, tmp / f"speech-{index}.wav", item.voice)
            return path, item.name, None
        if isinstance(item, Chime):
            path = item.path or self.chime or write_default_chime(tmp / f"chime-{index}.wav")
            return path, display_name(path) if item.path or self.chime else "chime", None
        assert isinstance(item, Recording)
        return item.path, item.name, None

    def _check_total(self, parts: dict[Item, Analysis]) -> None:
        """Refuse a composition longer than the limit once trimmed."""
        total = sum(_seconds(i, parts) for i in self.items) + self.gap_s * (len(self.items) - 1)
        limit = self.processing.max_duration_s
        if len(self.items) > 1 and total > limit:
            raise too_long("cannot compose the bulletin", f"{total:.1f} s long", limit)

    def _level_all(self, parts: dict[Item, Analysis], tmp: Path) -> dict[Item, Leveled]:
        """Pass 2 for each part."""
        leveled: dict[Item, Leveled] = {}
        ceiling = self.processing.limiter_ceiling_dbfs
        for index, (item, part) in enumerate(parts.items()):
            span = self.meter.span(0.15 / len(parts), part.trimmed_s)
            context = f"cannot import {part.source_name!r}"
            out = tmp / f"level-{index}.s16"
            leveled[item] = level(part, out, self.processing, ceiling, context=context, progress=span)
        return leveled

    def _compose(self, leveled: dict[Item, Leveled], tmp: Path) -> Path:
        """The items in order with gaps between them, as one 16-bit PCM file."""
        if len(self.items) == 1:
            return leveled[self.items[0]].pcm
        mix = pcm.write_raw(self._segments(leveled), tmp / "mix.s16")
        self.meter.step(0.05)
        return mix

    def _segments(self, leveled: dict[Item, Leveled]) -> Iterator[Any]:
        """Each item's samples, faded at both ends, and the gaps; one part loaded at a time."""
        gap = pcm.silence(round(self.gap_s * 1000), RATE_HZ)
        for index, item in enumerate(self.items):
            if index:
                yield gap
            if isinstance(item, Silence):
                yield pcm.silence(round(item.seconds * 1000), RATE_HZ)
            else:
                yield pcm.load_raw(leveled[item].pcm, RATE_HZ).fade_in(FADE_MS).fade_out(FADE_MS)

    def _encode(
        self,
        mix: Path,
        formats: Sequence[Format],
        corrections: Sequence[Correction],
        tmp: Path,
        source_name: str,
        *,
        first: bool,
    ) -> list[EncodedAudio]:
        """Encode the mix in these formats, then decode each rendition to measure it."""
        media_s = mix.stat().st_size / pcm.SAMPLE_WIDTH / RATE_HZ
        context = f"cannot encode {source_name!r}"
        span = self.meter.span(0.4, media_s) if first else None
        outputs = encode(mix, formats, tmp, context=context, corrections=corrections, progress=span)
        renditions = measure_all(outputs, formats, context=context, media_s=media_s, source_name=source_name)
        if first:
            self.meter.step(0.1)
        return renditions


def _retry(miss: float) -> float:
    """The loudness correction for a miss: none within LOUDNESS_RETRY_LU."""
    return miss if abs(miss) > LOUDNESS_RETRY_LU else 0.0


def _out_of_spec(source_name: str, excess: float, miss: float, processing: Processing) -> AudioError:
    """The error for a rendition still out of spec after every attempt."""
    return AudioError(
        f"cannot import {source_name!r}: after {ATTEMPTS} attempts it measures "
        f"{processing.target_lufs - miss:.1f} LUFS with a true peak "
        f"{excess + processing.true_peak_dbtp:.1f} dBTP",
        hint="the recording may be clipped or mostly noise",
    )


def _seconds(item: Item, parts: dict[Item, Analysis]) -> float:
    """How long an item plays in the composition."""
    return item.seconds if isinstance(item, Silence) else parts[item].trimmed_s
