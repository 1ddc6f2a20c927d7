"""Generated audio: test signals (tone, noise, speech-like buzz) and the default attention chime.

Every lavfi source is given its duration explicitly: without one ffmpeg's sources run forever.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from speakerctl.audio import ffmpeg, pcm
from speakerctl.errors import AudioError

GENERATED_MAX_S = 3600.0
"""Cap on generated signals: lavfi sources read a zero or huge duration as "forever"."""
TONE_SAMPLE_RATE = 48000
SPEECHLIKE_SAMPLE_RATE = 16000
NOISE_COLORS = ("white", "pink", "brown")
CHIME_RATE_HZ = 24000
CHIME_NOTES_HZ = (523.25, 659.25, 783.99, 1046.50)
"""C5 E5 G5 C6: the rising arpeggio that says "an announcement follows"."""
CHIME_STEP_MS = 280
CHIME_RING_MS = 1400
CHIME_PARTIALS = ((1.0, 0.0), (2.0, -12.0), (3.0, -20.0))
"""(frequency multiple, level dB) of each note: a soft bell rather than a bare sine."""


def generate_tone(seconds: float, *, freq_hz: float = 440, path: Path) -> Path:
    """Write a mono 16-bit 48 kHz WAV sine tone to path, using ffmpeg's lavfi sine source."""
    _check_generated(seconds)
    if not (0 < freq_hz < TONE_SAMPLE_RATE / 2):
        raise AudioError(f"tone frequency must be between 0 and {TONE_SAMPLE_RATE // 2} Hz")
    source = f"sine=frequency={freq_hz:g}:sample_rate={TONE_SAMPLE_RATE}:duration={seconds:.3f}"
    return _write_wav(["-f", "lavfi", "-i", source], path)


def generate_noise(seconds: float, path: Path, *, color: str = "pink", amplitude: float = 0.5) -> Path:
    """Write mono 16-bit 48 kHz noise to path (a fixed seed: the same file every time)."""
    _check_generated(seconds)
    if color not in NOISE_COLORS or not 0 < amplitude <= 1:
        raise AudioError(f"noise must be {', '.join(NOISE_COLORS)} with amplitude in (0, 1]")
    source = f"anoisesrc=d={seconds:.3f}:c={color}:r={TONE_SAMPLE_RATE}:a={amplitude:g}:s=1"
    return _write_wav(["-f", "lavfi", "-i", source], path)


def generate_speechlike(seconds: float, path: Path) -> Path:
    """Write a mono 16 kHz WAV that sounds vaguely like speech: a gliding buzz in syllables."""
    _check_generated(seconds)
    # The phase is the integral of a pitch gliding 110-170 Hz, so the buzz stays a voice for hours.
    phase = "(2*PI*(140*t-30/(2*PI*0.7)*cos(2*PI*0.7*t)))"
    voice = f"(sin({phase})+0.5*sin(2*{phase})+0.25*sin(3*{phase}))"
    syllables = "pow(sin(PI*4.5*t),2)*gt(sin(2*PI*0.35*t),-0.7)"
    expression = f"0.4*{voice}*{syllables}+0.02*(2*random(0)-1)"
    source = f"aevalsrc='{expression}':s={SPEECHLIKE_SAMPLE_RATE}:d={seconds:.3f}"
    return _write_wav(["-f", "lavfi", "-i", source], path)


def write_default_chime(path: Path) -> Path:
    """Write the project's attention chime (a four-note bell arpeggio, ~2.2 s) as a WAV."""
    length = CHIME_STEP_MS * (len(CHIME_NOTES_HZ) - 1) + CHIME_RING_MS
    chime = pcm.silence(length, CHIME_RATE_HZ)
    for index, freq in enumerate(CHIME_NOTES_HZ):
        chime = chime.overlay(_bell(freq), position=index * CHIME_STEP_MS)
    return pcm.write_wav(chime, path)


def _bell(freq_hz: float) -> Any:
    """One struck note: a few partials that ring and die away."""
    from pydub.generators import Sine

    note = pcm.silence(CHIME_RING_MS, CHIME_RATE_HZ)
    for multiple, level_db in CHIME_PARTIALS:
        partial = Sine(freq_hz * multiple, sample_rate=CHIME_RATE_HZ).to_audio_segment(
            duration=CHIME_RING_MS, volume=level_db - 12
        )
        note = note.overlay(partial.fade_in(8).fade_out(CHIME_RING_MS - 8))
    return note


def _check_generated(seconds: float) -> None:
    """Refuse a generated length that is not in (0, GENERATED_MAX_S] seconds."""
    if not (math.isfinite(seconds) and 0 < seconds <= GENERATED_MAX_S):
        raise AudioError(f"generated audio must last 0–{GENERATED_MAX_S:g} s, not {seconds}")


def _write_wav(source_args: list[str], path: Path) -> Path:
    """Render a lavfi source to a mono 16-bit WAV at path."""
    args = [*source_args, "-ac", "1", "-c:a", "pcm_s16le", "-fflags", "+bitexact", "-f", "wav"]
    ffmpeg.run_ffmpeg([*args, "-y", ffmpeg.file_url(path)], context=f"cannot write {path.name!r}")
    return path
