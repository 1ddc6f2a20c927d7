"""Vietnamese text to speech, offline: normalised text, sentence by sentence, through espeak-ng.

Text is normalised first (`vietnamese.normalize`: numbers, dates and times in words) and split
into sentences; a fresh child process (`speakerctl.audio.espeak`) speaks them with a pause after
each into a 16-bit mono WAV at espeak-ng's own rate (22.05 kHz). The same text, voice and rate
always give the same samples.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from speakerctl.audio import vietnamese
from speakerctl.errors import AudioError

VOICES = {
    "vi": "vi",
    "vi-vn-x-south": "vi-vn-x-south",
    "vi-vn-x-central": "vi-vn-x-central",
}
"""CLI voice name → espeak-ng voice: northern (Hà Nội), southern (Sài Gòn), central (Huế)."""
DEFAULT_VOICE = "vi"
DEFAULT_RATE_WPM = 150
RATE_RANGE_WPM = (80, 400)
SENTENCE_PAUSE_MS = 350
MAX_TEXT_CHARS = 100_000
"""About three hours of speech: longer text is refused before any synthesis."""
STARTUP_S = 30.0
CHARS_PER_S = 200
"""Time allowed: start-up plus this many characters a second (espeak-ng does ~10,000)."""


@dataclass(frozen=True, slots=True)
class Voice:
    """A checked voice and speaking rate."""

    name: str = DEFAULT_VOICE
    rate_wpm: int = DEFAULT_RATE_WPM

    def __post_init__(self) -> None:
        if self.name not in VOICES:
            raise AudioError(f"unknown voice {self.name!r}", hint=f"use one of {', '.join(VOICES)}")
        lo, hi = RATE_RANGE_WPM
        if not lo <= self.rate_wpm <= hi:
            raise AudioError(f"speaking rate must be {lo}–{hi} words per minute, not {self.rate_wpm}")


STANDARD_VOICE = Voice()


def check_text(text: str, what: str = "text") -> str:
    """Text fit to speak: not blank, not absurdly long."""
    if not any(c.isalnum() for c in text):
        raise AudioError(f"{what} has nothing to say")
    if len(text) > MAX_TEXT_CHARS:
        raise AudioError(
            f"{what} is {len(text)} characters long; the limit is {MAX_TEXT_CHARS}",
            hint="split it into several bulletins",
        )
    return text


def synthesize(
    text: str,
    path: Path,
    voice: Voice = STANDARD_VOICE,
    *,
    progress: Callable[[float], None] | None = None,
) -> Path:
    """Speak Vietnamese text into a mono 16-bit WAV at path; progress gets the fraction done."""
    check_text(text)
    sentences = vietnamese.sentences(vietnamese.normalize(text, voice.name))
    request = {
        "voice": VOICES[voice.name],
        "rate": voice.rate_wpm,
        "sentences": sentences,
        "pause_ms": SENTENCE_PAUSE_MS,
        "path": str(path.absolute()),
    }
    _run_child(json.dumps(request), len(sentences), STARTUP_S + len(text) / CHARS_PER_S, progress)
    return path


def _run_child(request: str, count: int, timeout_s: float, progress: Callable[[float], None] | None) -> None:
    """Run the espeak-ng child on a request, relaying its per-sentence lines to progress."""
    command = [sys.executable, "-m", "speakerctl.audio.espeak"]
    try:
        with subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        ) as child:
            errors = _talk(child, request, count, timeout_s, progress)
    except OSError as exc:
        raise AudioError(f"text to speech: cannot run espeak-ng ({exc.strerror or exc})") from exc
    if child.returncode != 0:
        lines = errors.strip().splitlines()
        reason = lines[-1] if lines else f"exit code {child.returncode}"
        raise AudioError(reason if reason.startswith("text to speech") else f"text to speech: {reason}")


def _talk(
    child: subprocess.Popen[str],
    request: str,
    count: int,
    timeout_s: float,
    progress: Callable[[float], None] | None,
) -> str:
    """Send the request, relay progress until the child ends (killed past the timeout); its stderr."""
    assert child.stdin is not None and child.stdout is not None and child.stderr is not None
    expired = threading.Event()

    def expire() -> None:
        expired.set()
        child.kill()

    timer = threading.Timer(timeout_s, expire)
    timer.start()
    try:
        with contextlib.suppress(BrokenPipeError):  # a child that died early says why on stderr
            child.stdin.write(request)
            child.stdin.close()
        for line in child.stdout:
            if progress is not None and line.strip().isdigit():
                progress(min(1.0, int(line) / max(count, 1)))
        child.wait()
        errors = child.stderr.read()
    finally:
        timer.cancel()
    if expired.is_set():
        raise AudioError(f"text to speech took longer than {timeout_s:.0f} s")
    return errors
