"""The processing chain on real ffmpeg: every input format, loudness and peaks, trimming, composition.

Loudness and peaks are measured here independently of the pipeline's own measurement: the test
decodes each rendition through ffmpeg's ebur128 filter and reads its summary.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from speakerctl.audio import (
    PROFILES,
    Chime,
    Composition,
    EncodedAudio,
    Format,
    Processing,
    Recording,
    Rendering,
    Silence,
    Speech,
    Voice,
    generate_noise,
    generate_tone,
    import_audio,
    pcm,
    pipeline,
    render,
)
from speakerctl.audio.encoding import PEAK_STEP_DB, Correction, encode
from speakerctl.audio.ffmpeg import Loudness, Measurement, ffmpeg_exe, file_url, run_ffmpeg
from speakerctl.audio.tts import synthesize
from speakerctl.errors import AudioError

TARGET = -16.0
CEILING = -2.0
BOTH = ("opus", "mp3")
SPEECH = (
    "Kính thưa bà con nhân dân trong xã. Ủy ban nhân dân xã thông báo lịch tiêm phòng cho gia súc "
    "lúc 7:30 sáng ngày 29/11/2026 tại nhà văn hóa ấp. Đề nghị các hộ chăn nuôi chuẩn bị chuồng trại."
)


def _ffmpeg(*args: str) -> None:
    run_ffmpeg(args, context="test fixture")


def _independent(data: bytes, path: Path) -> tuple[float, float, float]:
    """(integrated LUFS, true peak dBTP, seconds) of encoded audio, read from ebur128's summary."""
    path.write_bytes(data)
    args = ["-i", file_url(path), "-af", "ebur128=peak=true:framelog=quiet", "-f", "null", "-"]
    log = run_ffmpeg(args, context="measure").stderr
    summary = log[log.rindex("Summary:") :]
    loudness = float(re.findall(r"I:\s+(-?[\d.]+) LUFS", summary)[0])
    peak = float(re.findall(r"Peak:\s+(-?[\d.]+) dBFS", summary)[0])
    seconds = re.findall(r"time=(\d+):(\d\d):(\d\d\.\d+)", log)[-1]
    return loudness, peak, int(seconds[0]) * 3600 + int(seconds[1]) * 60 + float(seconds[2])


def _check_in_spec(rendering: Rendering, tmp: Path, seconds: float, tolerance_s: float = 0.25) -> None:
    """Every rendition within ±1 LU of the target, under the true-peak ceiling, of the right length."""
    for audio in rendering.renditions:
        loudness, peak, length = _independent(audio.data, tmp / f"check.{audio.container}")
        assert abs(loudness - TARGET) <= 1.0, (audio.codec, loudness)
        assert peak <= CEILING, (audio.codec, peak)
        assert abs(length - seconds) <= tolerance_s, (audio.codec, length)
        assert abs(audio.duration_ms / 1000 - seconds) <= tolerance_s
        assert audio.loudness_lufs is not None and abs(audio.loudness_lufs - loudness) <= 0.15


def _is_codec(audio: EncodedAudio, codec: str) -> bool:
    if codec == "opus":
        return audio.data[:4] == b"OggS" and audio.data[28:36] == b"OpusHead" and audio.data[37] == 1
    return audio.data[:3] == b"ID3" or audio.data[:2] in (b"\xff\xf3", b"\xff\xf2", b"\xff\xfb")


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pipeline")


@pytest.fixture(scope="module")
def speech(clips: Path) -> Path:
    """Vietnamese speech from the TTS, 22.05 kHz mono WAV."""
    return synthesize(SPEECH, clips / "speech.wav", Voice("vi-vn-x-south", 170))


@pytest.fixture(scope="module")
def speech_s(speech: Path) -> float:
    """How long the speech plays once its silent ends are trimmed (the TTS ends on a pause)."""
    rendering = render(Composition((Recording(speech),)), ["opus"])
    return rendering.primary.duration_ms / 1000


FORMATS: dict[str, list[str]] = {
    "mp3": ["-ar", "44100", "-ac", "2", "-c:a", "libmp3lame", "-b:a", "128k"],
    "m4a": ["-ar", "44100", "-c:a", "aac", "-b:a", "64k"],
    "aac": ["-ar", "22050", "-c:a", "aac", "-b:a", "48k", "-f", "adts"],
    "amr": ["-ar", "8000", "-ac", "1", "-c:a", "libopencore_amrnb", "-b:a", "12.2k"],
    "ogg": ["-c:a", "libopus", "-b:a", "32k"],
    "opus": ["-c:a", "libopus", "-b:a", "32k", "-f", "ogg"],
    "webm": ["-c:a", "libopus", "-b:a", "32k"],
    "flac": ["-c:a", "flac"],
    "wav": ["-ar", "48000", "-ac", "2", "-c:a", "pcm_s24le"],
}


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_comes_out_at_the_target(
    fmt: str, speech: Path, speech_s: float, clips: Path, tmp_path: Path
) -> None:
    source = clips / f"phone.{fmt}"
    _ffmpeg("-i", file_url(speech), *FORMATS[fmt], "-y", file_url(source))
    rendering = render(Composition((Recording(source),)), BOTH)
    assert [a.codec for a in rendering.renditions] == ["opus", "mp3"]
    assert all(_is_codec(a, a.codec) for a in rendering.renditions)
    assert [a.bitrate_kbps for a in rendering.renditions] == [24, 48]
    _check_in_spec(rendering, tmp_path, speech_s, tolerance_s=0.35)


@pytest.fixture(scope="module")
def inputs(clips: Path, speech: Path) -> dict[str, Path]:
    """Very quiet, very loud and ordinary inputs."""
    tone = generate_tone(2.0, freq_hz=700, path=clips / "tone.wav")
    quiet = clips / "quiet.wav"
    _ffmpeg("-i", file_url(tone), "-af", "volume=-38dB", "-c:a", "pcm_s16le", "-y", file_url(quiet))
    loud = generate_noise(2.0, clips / "loud.wav", color="pink", amplitude=1.0)
    return {"quiet tone": quiet, "loud noise": loud, "speech": speech}


def test_quiet_and_loud_inputs_come_out_equally_loud(inputs: dict[str, Path], tmp_path: Path) -> None:
    levels = {}
    for name, path in inputs.items():
        rendering = render(Composition((Recording(path),)), BOTH)
        levels[name] = [_independent(a.data, tmp_path / f"x.{a.container}")[:2] for a in rendering.renditions]
    for name, measured in levels.items():
        for loudness, peak in measured:
            assert abs(loudness - TARGET) <= 1.0, (name, loudness)
            assert peak <= CEILING, (name, peak)
    primaries = [measured[0][0] for measured in levels.values()]
    assert max(primaries) - min(primaries) <= 1.0


def test_silence_is_trimmed_at_both_ends_with_a_little_kept(clips: Path, tmp_path: Path) -> None:
    padded = clips / "padded.m4a"
    tone = "sine=frequency=500:sample_rate=44100:duration=2"
    graph = f"anullsrc=r=44100:cl=stereo:d=1.5[a];{tone},aformat=channel_layouts=stereo[b];"
    graph += "anullsrc=r=44100:cl=stereo:d=2.5[c];[a][b][c]concat=n=3:v=0:a=1"
    _ffmpeg("-filter_complex", graph, "-c:a", "aac", "-y", file_url(padded))
    rendering = render(Composition((Recording(padded),)), ["opus"])
    edge = Processing().edge_pad_s
    _check_in_spec(rendering, tmp_path, 2.0 + 2 * edge, tolerance_s=0.15)


def test_a_composition_renders_into_one_file(speech: Path, speech_s: float, tmp_path: Path) -> None:
    tone = generate_tone(1.0, freq_hz=600, path=tmp_path / "item.wav")
    items = (Chime(), Speech("Xin chào bà con."), Recording(tone), Silence(1.0), Chime())
    rendering = render(Composition(items, gap_s=0.5), BOTH)
    parts = {
        "chime": render(Composition((Chime(),)), ["opus"]).primary.duration_ms / 1000,
        "hello": render(Composition((Speech("Xin chào bà con."),)), ["opus"]).primary.duration_ms / 1000,
    }
    expected = 2 * parts["chime"] + parts["hello"] + 1.0 + 1.0 + 4 * 0.5
    _check_in_spec(rendering, tmp_path, expected, tolerance_s=0.1)
    assert rendering.source_name == "tts"


def test_music_profile_encodes_at_higher_bitrates(inputs: dict[str, Path]) -> None:
    rendering = render(Composition((Recording(inputs["loud noise"]),), profile="music"), BOTH)
    assert rendering.profile == "music"
    assert [a.bitrate_kbps for a in rendering.renditions] == [64, 96]


def test_codecs_are_encoded_once_each_opus_first(inputs: dict[str, Path]) -> None:
    rendering = render(Composition((Recording(inputs["quiet tone"]),)), ["mp3", "opus", "mp3"])
    assert [a.codec for a in rendering.renditions] == ["opus", "mp3"]
    only_mp3 = render(Composition((Recording(inputs["quiet tone"]),)), ["mp3"])
    assert [a.codec for a in only_mp3.renditions] == ["mp3"]


def test_rendering_is_deterministic(inputs: dict[str, Path]) -> None:
    composition = Composition((Chime(), Recording(inputs["quiet tone"])))
    first = render(composition, BOTH)
    again = render(composition, BOTH)
    assert [a.sha256 for a in first.renditions] == [a.sha256 for a in again.renditions]


def test_progress_goes_forward_to_the_end(inputs: dict[str, Path]) -> None:
    seen: list[float] = []
    render(Composition((Chime(), Recording(inputs["speech"]))), BOTH, progress=seen.append)
    assert seen and seen == sorted(seen) and seen[-1] == pytest.approx(1.0)
    assert all(0.0 <= f <= 1.0 for f in seen)


def test_a_chime_file_replaces_the_default(clips: Path) -> None:
    bell = generate_tone(0.8, freq_hz=880, path=clips / "bell.wav")
    default = render(Composition((Chime(),)), ["opus"]).primary
    custom = render(Composition((Chime(),)), ["opus"], chime=bell).primary
    assert abs(custom.duration_ms - 800) <= 50 and custom.sha256 != default.sha256
    assert render(Composition((Chime(bell),)), ["opus"]).primary.sha256 == custom.sha256


def test_a_composition_over_the_limit_is_refused(inputs: dict[str, Path]) -> None:
    items = (Recording(inputs["quiet tone"]), Recording(inputs["loud noise"]))
    with pytest.raises(AudioError, match=r"limit is 3 s and it is .* s long"):
        render(Composition(items), ["opus"], processing=Processing(max_duration_s=3))


def test_a_bad_item_names_its_file(clips: Path, inputs: dict[str, Path]) -> None:
    junk = clips / "ghi-chu.m4a"
    junk.write_text("không phải âm thanh")
    with pytest.raises(AudioError, match=r"'ghi-chu\.m4a'.*not an audio file"):
        render(Composition((Chime(), Recording(junk))), ["opus"])


def test_scratch_space_is_removed_whatever_happens(tmp_path: Path, inputs: dict[str, Path]) -> None:
    scratch = tmp_path / "scratch"
    render(Composition((Recording(inputs["quiet tone"]),)), ["opus"], scratch_dir=scratch)
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"RIFF....WAVEfmt ")
    with pytest.raises(AudioError):
        render(Composition((Recording(junk),)), ["opus"], scratch_dir=scratch)
    assert list(scratch.iterdir()) == []


def _fake_measure(readings: dict[str, list[tuple[float, float]]]) -> Callable[..., Measurement]:
    """A measure() that reports, per codec, these (loudness, true peak) in turn, then in spec."""

    def measure(path: Path, **_: object) -> Measurement:
        queue = readings.get(path.name.split("-")[1].split(".")[0], [])
        loudness, peak = queue.pop(0) if queue else (TARGET, CEILING - 1)
        return Measurement(1000, Loudness(loudness, peak))

    return measure


def _corrections(monkeypatch: pytest.MonkeyPatch) -> list[list[tuple[str, Correction]]]:
    """The (codec, correction) of every encoding run."""
    calls: list[list[tuple[str, Correction]]] = []
    real = pipeline.encode

    def spy(mix: Path, formats: list[Format], tmp: Path, **kw: Any) -> list[Path]:
        fixes = kw.get("corrections") or [Correction()] * len(formats)
        calls.append([(f.codec, c) for f, c in zip(formats, fixes, strict=True)])
        return real(mix, formats, tmp, **kw)

    monkeypatch.setattr(pipeline, "encode", spy)
    return calls


def test_a_true_peak_over_the_ceiling_lowers_that_renditions_limiter(
    monkeypatch: pytest.MonkeyPatch, inputs: dict[str, Path]
) -> None:
    calls = _corrections(monkeypatch)
    monkeypatch.setattr(pipeline.ffmpeg, "measure", _fake_measure({"mp3": [(TARGET, CEILING + 0.7)]}))
    rendering = render(Composition((Recording(inputs["quiet tone"]),)), BOTH)
    base = Processing().limiter_ceiling_dbfs
    assert calls == [
        [("opus", Correction()), ("mp3", Correction())],
        [("mp3", Correction(0.0, pytest.approx(base - 0.7 - PEAK_STEP_DB)))],  # type: ignore[arg-type]
    ]
    assert [a.codec for a in rendering.renditions] == ["opus", "mp3"]


def test_a_loudness_miss_gives_that_rendition_its_own_gain(
    monkeypatch: pytest.MonkeyPatch, inputs: dict[str, Path]
) -> None:
    calls = _corrections(monkeypatch)
    monkeypatch.setattr(pipeline.ffmpeg, "measure", _fake_measure({"opus": [(TARGET - 0.8, CEILING - 1)]}))
    render(Composition((Recording(inputs["quiet tone"]),)), BOTH)
    fix = calls[1]
    assert [codec for codec, _ in fix] == ["opus"] and fix[0][1].gain_db == pytest.approx(0.8)
    assert fix[0][1].ceiling_dbfs == Processing().limiter_ceiling_dbfs


def test_a_small_miss_is_left_alone_and_any_miss_within_a_lu_passes_last(
    monkeypatch: pytest.MonkeyPatch, inputs: dict[str, Path]
) -> None:
    calls = _corrections(monkeypatch)
    misses = {
        "opus": [(TARGET + 0.4, CEILING - 1)],
        "mp3": [(TARGET - 2, CEILING - 1)] * 2 + [(TARGET - 0.9, -9)],
    }
    monkeypatch.setattr(pipeline.ffmpeg, "measure", _fake_measure(misses))
    render(Composition((Recording(inputs["quiet tone"]),)), BOTH)
    assert [[codec for codec, _ in run] for run in calls] == [["opus", "mp3"], ["mp3"], ["mp3"]]


def test_out_of_spec_after_every_attempt_is_an_error(
    monkeypatch: pytest.MonkeyPatch, inputs: dict[str, Path]
) -> None:
    monkeypatch.setattr(pipeline.ffmpeg, "measure", _fake_measure({"opus": [(TARGET, 0.0)] * 5}))
    with pytest.raises(AudioError, match=r"after 3 attempts .* true peak 0\.0 dBTP"):
        render(Composition((Recording(inputs["quiet tone"]),)), ["opus"])


def test_a_correction_applies_its_own_gain_and_limiter(inputs: dict[str, Path], tmp_path: Path) -> None:
    mix = tmp_path / "mix.s16"
    _ffmpeg("-i", file_url(inputs["speech"]), "-ar", "48000", "-ac", "1", "-f", "s16le", "-y", file_url(mix))
    fmt = PROFILES["speech"].format("opus")
    measured = {}
    for name, correction in {"as is": Correction(), "down": Correction(-6.0, -12.0)}.items():
        (out,) = encode(mix, [fmt], tmp_path, context="test", corrections=[correction])
        measured[name] = _independent(out.read_bytes(), tmp_path / "c.ogg")
    assert measured["down"][0] < measured["as is"][0] - 5
    assert measured["down"][1] <= -12.0 + 2.0  # a sample-peak limiter; Opus overshoots a little
    assert Correction().neutral and Correction().chain() == "anull"


def test_import_audio_keeps_its_one_codec_interface(inputs: dict[str, Path]) -> None:
    audio = import_audio(inputs["speech"], codec="mp3", bitrate_kbps=32)
    assert (audio.codec, audio.bitrate_kbps, audio.source_name) == ("mp3", 32, "speech.wav")
    assert audio.loudness_lufs is not None and abs(audio.loudness_lufs - TARGET) <= 1


def test_pydub_runs_the_wheels_ffmpeg() -> None:
    assert pcm.segment_type().converter == ffmpeg_exe()
