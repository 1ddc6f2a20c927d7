"""speakerctl.audio with the real ffmpeg of the imageio-ffmpeg wheel, on short generated clips."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import wave
from pathlib import Path

import pytest

from speakerctl.audio import (
    ContentStore,
    EncodedAudio,
    generate_speechlike,
    generate_tone,
    import_audio,
)
from speakerctl.audio.ffmpeg import decoded_duration_ms, failure_reason, file_url, run_ffmpeg
from speakerctl.errors import AudioError, NoSpace, NotFound

TONE_S = 3.0
TOLERANCE_MS = 100


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory of generated clips shared by the module."""
    return tmp_path_factory.mktemp("clips")


@pytest.fixture(scope="module")
def tone(clips: Path) -> Path:
    """A 3 s 440 Hz mono WAV."""
    return generate_tone(TONE_S, path=clips / "tone.wav")


@pytest.fixture(scope="module")
def opus(tone: Path) -> EncodedAudio:
    """The tone imported with the defaults (Opus in Ogg, 24 kbps)."""
    return import_audio(tone)


@pytest.fixture(scope="module")
def mp3(tone: Path) -> EncodedAudio:
    """The tone imported as MP3."""
    return import_audio(tone, codec="mp3", bitrate_kbps=48)


def _ffmpeg(*args: str) -> None:
    """Run ffmpeg for a test fixture."""
    run_ffmpeg(args, context="test fixture")


def _mp3_frame_offset(data: bytes) -> int:
    """Offset of the first MPEG audio frame, past an ID3v2 tag if there is one."""
    if data[:3] != b"ID3":
        return 0
    size = 0
    for byte in data[6:10]:
        size = (size << 7) | byte
    return 10 + size


# --- encoding ------------------------------------------------------------------------------------


def test_tone_imports_to_mono_48k_opus_in_ogg(opus: EncodedAudio) -> None:
    assert (opus.codec, opus.container, opus.bitrate_kbps) == ("opus", "ogg", 24)
    assert opus.data[:4] == b"OggS"
    assert opus.data[28:36] == b"OpusHead"
    assert opus.data[37] == 1, "channel count"
    assert int.from_bytes(opus.data[40:44], "little") == 48000
    assert abs(opus.duration_ms - TONE_S * 1000) <= TOLERANCE_MS


def test_tone_imports_to_mono_mp3(mp3: EncodedAudio) -> None:
    assert (mp3.codec, mp3.container, mp3.bitrate_kbps) == ("mp3", "mp3", 48)
    offset = _mp3_frame_offset(mp3.data)
    header = mp3.data[offset : offset + 4]
    assert header[0] == 0xFF and header[1] & 0xE0 == 0xE0, "frame sync"
    assert (header[1] >> 1) & 0b11 == 0b01, "layer III"
    assert header[3] >> 6 == 0b11, "mono"
    assert abs(mp3.duration_ms - TONE_S * 1000) <= TOLERANCE_MS


@pytest.mark.parametrize("name", ["opus", "mp3"])
def test_hash_size_and_source_describe_the_data(name: str, request: pytest.FixtureRequest) -> None:
    audio: EncodedAudio = request.getfixturevalue(name)
    assert audio.sha256 == hashlib.sha256(audio.data).hexdigest()
    assert audio.size == len(audio.data) > 0
    assert audio.source_name == "tone.wav"
    assert "data" not in repr(audio)


def test_import_is_deterministic(tone: Path, opus: EncodedAudio) -> None:
    assert import_audio(tone).sha256 == opus.sha256


def test_measured_duration_is_that_of_the_output(clips: Path, opus: EncodedAudio) -> None:
    path = clips / "measured.ogg"
    path.write_bytes(opus.data)
    assert decoded_duration_ms(path, context="test") == opus.duration_ms


def test_speechlike_clip_imports(clips: Path) -> None:
    source = generate_speechlike(2.0, clips / "speech.wav")
    audio = import_audio(source, codec="mp3", bitrate_kbps=32)
    assert abs(audio.duration_ms - 2000) <= TOLERANCE_MS


def test_all_silence_is_refused(clips: Path) -> None:
    silence = clips / "silence.wav"
    _ffmpeg("-f", "lavfi", "-i", "anullsrc=r=8000:cl=mono", "-t", "1", "-y", file_url(silence))
    with pytest.raises(AudioError, match=r"'silence\.wav'.*all silence"):
        import_audio(silence)


@pytest.mark.parametrize(("codec", "kbps"), [("aac", 24), ("opus", 4), ("mp3", 20), ("mp3", 320)])
def test_unsupported_codec_or_bitrate(tone: Path, codec: str, kbps: int) -> None:
    with pytest.raises(AudioError, match=codec):
        import_audio(tone, codec=codec, bitrate_kbps=kbps)


# --- bad input -----------------------------------------------------------------------------------


def _text_as_mp3(clips: Path, _: EncodedAudio) -> Path:
    path = clips / "notes.mp3"
    path.write_text("Thông báo: họp thôn lúc 8 giờ sáng mai.\n" * 20, encoding="utf-8")
    return path


def _empty(clips: Path, _: EncodedAudio) -> Path:
    path = clips / "empty.mp3"
    path.write_bytes(b"")
    return path


def _missing(clips: Path, _: EncodedAudio) -> Path:
    return clips / "does-not-exist.wav"


def _half_wav(clips: Path, _: EncodedAudio) -> Path:
    data = (clips / "tone.wav").read_bytes()
    path = clips / "half.wav"
    path.write_bytes(data[: len(data) // 2])
    return path


def _half_mp3(clips: Path, mp3: EncodedAudio) -> Path:
    path = clips / "half.mp3"
    path.write_bytes(mp3.data[: mp3.size // 2])
    return path


def _no_samples(clips: Path, _: EncodedAudio) -> Path:
    path = clips / "header-only.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
    return path


def _video_only(clips: Path, _: EncodedAudio) -> Path:
    path = clips / "camera.mkv"
    source = "testsrc=duration=0.4:size=32x32:rate=5"
    _ffmpeg("-f", "lavfi", "-i", source, "-c:v", "mjpeg", "-y", file_url(path))
    return path


def _concat_list(clips: Path, _: EncodedAudio) -> Path:
    path = clips / "playlist.mp3"
    path.write_text(f"ffconcat version 1.0\nfile '{clips / 'tone.wav'}'\n", encoding="utf-8")
    return path


BAD_INPUTS = {
    "not audio": (_text_as_mp3, "not an audio file"),
    "empty": (_empty, "empty"),
    "missing": (_missing, "no such file"),
    "truncated wav": (_half_wav, "truncated"),
    "truncated mp3": (_half_mp3, "truncated"),
    "no samples": (_no_samples, "no audio samples"),
    "no audio stream": (_video_only, "no audio stream"),
    "concat list": (_concat_list, "not a supported audio format"),
}


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_names_the_file_and_the_reason(
    case: str, clips: Path, tone: Path, mp3: EncodedAudio
) -> None:
    make, reason = BAD_INPUTS[case]
    path = make(clips, mp3)
    with pytest.raises(AudioError) as caught:
        import_audio(path)
    assert path.name in str(caught.value)
    assert reason in str(caught.value)
    assert "\n" not in str(caught.value)


def test_declared_length_over_the_limit(tone: Path) -> None:
    with pytest.raises(AudioError, match=r"'tone\.wav'.*limit is 2 s.*3\.0 s long"):
        import_audio(tone, max_duration_s=2)


def test_undeclared_length_over_the_limit(clips: Path) -> None:
    path = clips / "no-xing.mp3"
    source = "sine=duration=3"
    _ffmpeg("-f", "lavfi", "-i", source, "-c:a", "libmp3lame", "-write_xing", "0", "-y", file_url(path))
    with pytest.raises(AudioError, match=r"'no-xing\.mp3'.*limit is 2 s"):
        import_audio(path, max_duration_s=2)


def test_mp3_without_declared_length_cut_short_imports_what_decodes(clips: Path) -> None:
    whole = clips / "stream.mp3"
    _ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "sine=duration=2",
        "-c:a",
        "libmp3lame",
        "-write_xing",
        "0",
        "-y",
        file_url(whole),
    )
    data = whole.read_bytes()
    cut = clips / "stream-cut.mp3"
    cut.write_bytes(data[: len(data) // 2])
    assert abs(import_audio(cut).duration_ms - 1000) <= TOLERANCE_MS


def test_generated_length_must_be_finite_and_positive(clips: Path) -> None:
    for seconds in (0.0, -1.0, float("inf"), 1e6):
        with pytest.raises(AudioError, match="generated audio"):
            generate_tone(seconds, path=clips / "never.wav")
    assert not (clips / "never.wav").exists()


# --- ffmpeg runner -------------------------------------------------------------------------------


def test_timeout_is_an_audio_error() -> None:
    endless = ["-f", "lavfi", "-i", "sine", "-f", "null", "-"]
    with pytest.raises(AudioError, match=r"longer than 0\.3 s"):
        run_ffmpeg(endless, context="endless", timeout_s=0.3)


def test_failure_reason_is_the_last_meaningful_line() -> None:
    log = (
        "[in#0 @ 0x55d0] Format mp3 detected only with low score of 1, misdetection possible!\n"
        "[in#0 @ 0x55d0] Failed to find two consecutive MPEG audio frames.\n"
        "[in#0 @ 0x55d0] Error opening input: Invalid data found when processing input\n"
        "Error opening input file x.mp3.\n"
        "Error opening input files: Invalid data found when processing input\n"
    )
    reason = "not an audio file, or damaged (ffmpeg: Invalid data found when processing input)"
    assert failure_reason(log) == reason
    assert failure_reason("Conversion failed!\n") == "ffmpeg failed without saying why"


# --- content store -------------------------------------------------------------------------------


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_put_stores_by_hash(tmp_path: Path, opus: EncodedAudio, mp3: EncodedAudio) -> None:
    store = ContentStore(tmp_path)
    path = store.put(opus)
    assert path == tmp_path / opus.sha256[:2] / f"{opus.sha256}.ogg"
    assert store.put(mp3).name == f"{mp3.sha256}.mp3"
    assert store.read(opus.sha256) == opus.data
    assert store.path(mp3.sha256).read_bytes() == mp3.data
    assert store.has(opus.sha256) and store.has(mp3.sha256)
    assert _files(tmp_path) == sorted(f"{a.sha256[:2]}/{a.sha256}.{a.container}" for a in (opus, mp3))


def test_put_deduplicates(tmp_path: Path, opus: EncodedAudio) -> None:
    store = ContentStore(tmp_path)
    first = store.put(opus)
    before = first.stat()
    assert store.put(dataclasses.replace(opus, source_name="again.wav")) == first
    after = first.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert len(_files(tmp_path)) == 1


def test_put_refuses_data_that_does_not_match_its_hash(tmp_path: Path, opus: EncodedAudio) -> None:
    forged = dataclasses.replace(opus, sha256="0" * 64)
    with pytest.raises(AudioError, match="does not match"):
        ContentStore(tmp_path).put(forged)
    assert _files(tmp_path) == []


def test_failed_put_leaves_no_temp_file(
    tmp_path: Path, opus: EncodedAudio, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    store = ContentStore(tmp_path)
    with pytest.raises(NoSpace, match="no space left on device"):
        store.put(opus)
    assert _files(tmp_path) == []
    assert not store.has(opus.sha256)


def test_remove_and_absent_content(tmp_path: Path, opus: EncodedAudio) -> None:
    store = ContentStore(tmp_path)
    store.put(opus)
    store.remove(opus.sha256)
    assert not store.has(opus.sha256)
    for call in (store.path, store.read, store.remove):
        with pytest.raises(NotFound):
            call(opus.sha256)


def test_malformed_hash_names_nothing(tmp_path: Path) -> None:
    store = ContentStore(tmp_path)
    assert not store.has("../../etc/passwd")
    with pytest.raises(NotFound):
        store.path("AB" * 32)
