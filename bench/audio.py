"""Audio benchmark: import, normalise and encode a 5-minute speech recording, against bare ffmpeg.

The recording is made first (not timed): Vietnamese text spoken by the TTS, cut to the length and
saved as a 44.1 kHz stereo 128 kbps MP3, as a provincial station would send it. Then, alternately:

  speakerctl   `render()` of that file for the Sóc Trăng fleet (Opus 24 kbps + MP3 48 kbps): probe,
               decode/filter/measure, level (two or three passes over PCM), encode both, decode
               both to measure loudness, true peak and length. Run in a fresh Python process each
               time, which reports its own peak memory (self + children).
  baseline     one bare ffmpeg command doing the same processing in a single pass: decode, mono,
               48 kHz, high-pass 120 Hz, low-pass 8 kHz, silence trimmed at both ends (silenceremove
               around areverse), loudnorm to -16 LUFS / -2 dBTP (its one-pass, dynamic mode: a single
               command cannot know the gain before it has heard the file), both encodes.

Prints `name: value` lines:
  audio_speakerctl_5min_s      median wall time of speakerctl's render
  audio_baseline_5min_s        median wall time of the bare ffmpeg command
  audio_ratio_5min             speakerctl / baseline (target: at most 1.3)
  audio_lufs_5min, audio_true_peak_5min            speakerctl's Opus, measured (target -16, ceiling -2)
  audio_baseline_lufs_5min, audio_baseline_true_peak_5min   the same for the baseline's Opus
  audio_peak_rss_mb            speakerctl's peak memory: its process plus its largest child (ffmpeg)
  audio_baseline_peak_rss_mb   the bare ffmpeg's peak memory

Usage: .venv/bin/python bench/audio.py [--seconds 300] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from speakerctl.audio import Composition, Recording, render
from speakerctl.audio.ffmpeg import ffmpeg_exe, file_url, measure, run_ffmpeg
from speakerctl.audio.tts import Voice, synthesize
from speakerctl.controller.library import fleet_codecs
from speakerctl.fleet import load_inventory

PARAGRAPH = (
    "Kính thưa bà con nhân dân trong xã. Ủy ban nhân dân xã thông báo lịch tiêm phòng cho gia súc, "
    "gia cầm đợt {n} năm 2026. Thời gian bắt đầu từ {h}:30 sáng ngày {d}/11/2026 tại nhà văn hóa ấp "
    "{n}. Đề nghị các hộ chăn nuôi chuẩn bị chuồng trại, nhốt vật nuôi để cán bộ thú y tiêm phòng "
    "đúng lịch. Hiện nay toàn xã có {c} hộ chăn nuôi với khoảng {p}.500 con heo và {q}.000 con gà, "
    "vịt. Mọi thắc mắc xin liên hệ trưởng ấp hoặc cán bộ thú y xã qua số điện thoại 0299{n}123456. "
    "Tiếp theo là bản tin thời tiết: trong ba ngày tới, trời có mưa rào và dông vài nơi, nhiệt độ "
    "từ {t} đến 32 độ. Bà con lưu ý giữ gìn sức khỏe và bảo vệ lúa vụ đông xuân.\n"
)
SECONDS_PER_PARAGRAPH = 45
"""A little less than the TTS takes at 150 words a minute, so the text is always long enough."""


def long_text(seconds: float) -> str:
    """Vietnamese bulletin text that takes at least `seconds` to read."""
    count = int(seconds / SECONDS_PER_PARAGRAPH) + 1
    return "".join(
        PARAGRAPH.format(n=i, h=5 + i % 3, d=1 + i % 28, c=100 + 7 * i, p=i + 1, q=2 * i + 3, t=24 + i % 3)
        for i in range(1, count + 1)
    )


def make_recording(seconds: float, folder: Path) -> Path:
    """A `seconds`-long speech recording as a 44.1 kHz stereo MP3."""
    speech = synthesize(long_text(seconds), folder / "speech.wav", Voice("vi", 150))
    recording = folder / "ban-tin-5-phut.mp3"
    args = ["-i", file_url(speech), "-t", f"{seconds:.3f}", "-ar", "44100", "-ac", "2"]
    run_ffmpeg([*args, "-c:a", "libmp3lame", "-b:a", "128k", "-y", file_url(recording)], context="bench")
    speech.unlink()
    return recording


def baseline_command(source: Path, folder: Path) -> list[str]:
    """The single bare ffmpeg command: the same processing and both encodes."""
    trim = "silenceremove=start_periods=1:start_threshold=-45dB:start_silence=0.15"
    graph = ",".join(
        (
            "[0:a]aresample=48000,aformat=sample_fmts=flt:channel_layouts=mono",
            "highpass=f=120,lowpass=f=8000",
            f"{trim},areverse,{trim},areverse",
            "loudnorm=I=-16:TP=-2:LRA=11,aresample=48000,asplit[a][b]",
        )
    )
    opus = ["-map", "[a]", "-c:a", "libopus", "-application", "voip", "-b:a", "24k"]
    mp3 = ["-map", "[b]", "-ar", "24000", "-c:a", "libmp3lame", "-b:a", "48k"]
    outputs = [*opus, "-y", str(folder / "baseline.ogg"), *mp3, "-y", str(folder / "baseline.mp3")]
    quiet = ["-hide_banner", "-nostdin", "-v", "error"]
    return [ffmpeg_exe(), *quiet, "-i", str(source), "-filter_complex", graph, *outputs]


def run_baseline(source: Path, folder: Path) -> tuple[float, float]:
    """(seconds, peak RSS in MB) of one bare ffmpeg run."""
    started = time.perf_counter()
    with subprocess.Popen(baseline_command(source, folder)) as proc:
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"the baseline ffmpeg failed with exit code {proc.returncode}")
    return elapsed, usage.ru_maxrss / 1024


def run_speakerctl(source: Path) -> dict[str, float]:
    """One import in a fresh process: its seconds, peak memory and the Opus's loudness and peak."""
    done = subprocess.run(
        [sys.executable, __file__, "--one-import", str(source)], capture_output=True, text=True, check=True
    )
    result: dict[str, float] = json.loads(done.stdout)
    return result


def one_import(source: Path) -> None:
    """The child's side: render for the fleet, then print the figures as JSON."""
    codecs = fleet_codecs(load_inventory())
    started = time.perf_counter()
    rendering = render(Composition((Recording(source),)), codecs)
    elapsed = time.perf_counter() - started
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    primary = rendering.primary
    figures = {
        "seconds": elapsed,
        "rss_mb": (own + children) / 1024,
        "lufs": primary.loudness_lufs,
        "true_peak": primary.true_peak_dbtp,
        "codecs": len(rendering.renditions),
    }
    print(json.dumps(figures))


def main() -> None:
    """Make the recording, time both sides alternately, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--one-import", type=Path, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.one_import:
        one_import(options.one_import)
        return
    folder = Path(tempfile.mkdtemp(prefix="speakerctl-bench-audio-"))
    try:
        report(options.seconds, options.repeats, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def report(seconds: float, repeats: int, folder: Path) -> None:
    """Run the benchmark in `folder` and print it."""
    source = make_recording(seconds, folder)
    ours: list[dict[str, float]] = []
    bare: list[tuple[float, float]] = []
    for _ in range(repeats):
        ours.append(run_speakerctl(source))
        bare.append(run_baseline(source, folder))
    label = f"{seconds / 60:g}min"
    ours_s = statistics.median(r["seconds"] for r in ours)
    bare_s = statistics.median(s for s, _ in bare)
    base = measure(folder / "baseline.ogg", context="bench").loudness
    figures = {
        f"audio_speakerctl_{label}_s": ours_s,
        f"audio_baseline_{label}_s": bare_s,
        f"audio_ratio_{label}": ours_s / bare_s,
        f"audio_lufs_{label}": ours[-1]["lufs"],
        f"audio_true_peak_{label}": ours[-1]["true_peak"],
        f"audio_baseline_lufs_{label}": base.integrated_lufs,
        f"audio_baseline_true_peak_{label}": base.true_peak_dbtp,
        "audio_peak_rss_mb": max(r["rss_mb"] for r in ours),
        "audio_baseline_peak_rss_mb": max(m for _, m in bare),
    }
    for name, value in figures.items():
        print(f"{name}: {value:.3g}" if isinstance(value, float) else f"{name}: {value}")


if __name__ == "__main__":
    main()
