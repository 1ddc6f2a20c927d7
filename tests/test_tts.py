"""Offline Vietnamese text to speech with the espeak-ng of the espeakng-loader wheel."""

from __future__ import annotations

import hashlib
import wave
from pathlib import Path

import pytest

from speakerctl.audio import Voice
from speakerctl.audio.tts import MAX_TEXT_CHARS, synthesize
from speakerctl.errors import AudioError

TEXT = "Kính thưa bà con. Lúc 05:00 ngày 29/11/2026, xã tổ chức tiêm phòng cho 1.500 con gia súc."


def _seconds(path: Path) -> float:
    with wave.open(str(path)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth()) == (1, 2)
        return wav.getnframes() / wav.getframerate()


def test_text_becomes_mono_speech(tmp_path: Path) -> None:
    path = synthesize(TEXT, tmp_path / "tin.wav")
    assert 4 < _seconds(path) < 20


def test_each_voice_speaks_differently(tmp_path: Path) -> None:
    digests = set()
    for name in ("vi", "vi-vn-x-south", "vi-vn-x-central"):
        path = synthesize("Xin chào bà con", tmp_path / f"{name}.wav", Voice(name))
        digests.add(hashlib.sha256(path.read_bytes()).hexdigest())
    assert len(digests) == 3


def test_rate_changes_the_length(tmp_path: Path) -> None:
    slow = _seconds(synthesize(TEXT, tmp_path / "slow.wav", Voice("vi", 100)))
    fast = _seconds(synthesize(TEXT, tmp_path / "fast.wav", Voice("vi", 250)))
    assert fast < slow * 0.7


def test_progress_counts_sentences(tmp_path: Path) -> None:
    seen: list[float] = []
    synthesize("Một. Hai. Ba. Bốn.", tmp_path / "p.wav", progress=seen.append)
    assert seen == [0.25, 0.5, 0.75, 1.0]


def test_synthesis_is_repeatable(tmp_path: Path) -> None:
    first = synthesize(TEXT, tmp_path / "a.wav").read_bytes()
    assert synthesize(TEXT, tmp_path / "b.wav").read_bytes() == first


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Voice("en"), "unknown voice 'en'"),
        (lambda: Voice("vi", 30), "80–400 words per minute"),
        (lambda: synthesize(" … ", Path("never.wav")), "nothing to say"),
        (lambda: synthesize("a" * (MAX_TEXT_CHARS + 1), Path("never.wav")), "characters long"),
    ],
)
def test_bad_voice_rate_or_text(make: object, message: str) -> None:
    with pytest.raises(AudioError, match=message):
        make()  # type: ignore[operator]
