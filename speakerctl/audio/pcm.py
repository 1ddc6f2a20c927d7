"""Decoded PCM as pydub AudioSegments: silence, fades, joins, WAV and raw files.

pydub is only ever given PCM that ffmpeg (or espeak-ng) has already produced, so it never needs
ffprobe or mediainfo; its `converter` is still pointed at the wheel's ffmpeg, so nothing it
might run could pick up another ffmpeg from the PATH.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from speakerctl.audio import ffmpeg
from speakerctl.errors import AudioError
from speakerctl.files import check_space

SAMPLE_WIDTH = 2
"""16-bit signed little-endian, mono, everywhere pydub is involved."""


@functools.cache
def segment_type() -> Any:
    """pydub's AudioSegment, imported quietly and bound to the wheel's ffmpeg."""
    with warnings.catch_warnings():
        # pydub warns at import when no ffmpeg is on the PATH; ours is not meant to be there.
        warnings.simplefilter("ignore", RuntimeWarning)
        from pydub import AudioSegment
    AudioSegment.converter = ffmpeg.ffmpeg_exe()
    return AudioSegment


def segment(data: bytes, rate_hz: int) -> Any:
    """Mono 16-bit samples as an AudioSegment."""
    whole = len(data) - len(data) % SAMPLE_WIDTH
    return segment_type()(data=data[:whole], sample_width=SAMPLE_WIDTH, frame_rate=rate_hz, channels=1)


def silence(ms: int, rate_hz: int) -> Any:
    """Digital silence, mono 16-bit."""
    return segment_type().silent(duration=ms, frame_rate=rate_hz).set_sample_width(SAMPLE_WIDTH)


def load_raw(path: Path, rate_hz: int) -> Any:
    """A headerless mono 16-bit file as an AudioSegment."""
    return segment(_read(path), rate_hz)


def join(segments: Iterable[Any], rate_hz: int) -> Any:
    """Segments one after the other, copied once (pydub's `+` copies at every step)."""
    return segment(b"".join(raw(s) for s in segments), rate_hz)


def raw(seg: Any) -> bytes:
    """The samples of a segment."""
    data: bytes = seg.raw_data
    return data


def write_wav(seg: Any, path: Path) -> Path:
    """A segment as a WAV file (pydub writes WAV itself, without ffmpeg)."""
    try:
        with path.open("wb") as out:
            seg.export(out, format="wav")
    except OSError as exc:
        check_space(exc, path.parent)
        raise AudioError(f"cannot write {path.name} ({exc.strerror or exc})") from exc
    return path


def write_raw(segments: Iterable[Any], path: Path) -> Path:
    """Segments one after the other as a headerless file, one segment in memory at a time."""
    try:
        with path.open("wb") as out:
            for seg in segments:
                out.write(raw(seg))
    except OSError as exc:
        check_space(exc, path.parent)
        raise AudioError(f"cannot write {path.name} ({exc.strerror or exc})") from exc
    return path


def _read(path: Path) -> bytes:
    """The bytes of a scratch file."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise AudioError(f"cannot read {path.name} ({exc.strerror or exc})") from exc
