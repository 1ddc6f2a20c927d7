"""What the fleet plays: delivery codecs, processing profiles, and one encoded rendition.

A *profile* says how a bulletin is processed and at what bitrate each codec carries it: `speech`
(Opus 24 kbps in VoIP mode, MP3 48 kbps) for announcements, `music` (Opus 64 kbps, MP3 96 kbps)
for programmes with music. Both are mono: a pole carries one horn, or several playing the same.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from speakerctl.errors import AudioError

PREFERRED_CODEC = "opus"
"""Encoded first, so it is the primary rendition whenever a fleet plays it."""
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

    def output_args(self, bitrate_kbps: int, extra: Sequence[str] = ()) -> list[str]:
        """ffmpeg output options: mono at the codec's rate, the encoder, the container."""
        rate = ["-ac", "1", "-ar", str(self.sample_rate_hz)]
        encoder = [*self.encoder_args, *extra, "-b:a", f"{bitrate_kbps}k"]
        return [*rate, *encoder, "-f", self.container]

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
    "opus": CodecSpec("opus", "ogg", 48000, range(6, 257), ("-c:a", "libopus")),
    # MPEG-2 layer III at 24 kHz: the low bitrates speech needs, and horns stop below 12 kHz anyway.
    # LAME's most careful search (-q 0) overshoots the true peak ~0.7 dB less at 48 kbps, and it
    # runs beside the slower Opus encoder, so it costs no time.
    "mp3": CodecSpec("mp3", "mp3", 24000, _MP3_MPEG2_KBPS, ("-c:a", "libmp3lame", "-compression_level", "0")),
}


def codec_spec(codec: str, bitrate_kbps: int) -> CodecSpec:
    """The spec of a delivery codec, after checking the bitrate suits it."""
    spec = CODECS.get(codec)
    if spec is None:
        raise AudioError(f"unsupported codec {codec!r}", hint=f"use one of {', '.join(CODECS)}")
    spec.check_bitrate(bitrate_kbps)
    return spec


def order_codecs(codecs: Iterable[str]) -> tuple[str, ...]:
    """Distinct codecs, the preferred one first, the others in the order given."""
    unique = list(dict.fromkeys(codecs))
    return tuple(sorted(unique, key=lambda c: c != PREFERRED_CODEC))


@dataclass(frozen=True, slots=True)
class Format:
    """One rendition to encode: a codec at a bitrate, with the profile's encoder tuning."""

    codec: str
    bitrate_kbps: int
    tuning: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        codec_spec(self.codec, self.bitrate_kbps)

    @property
    def spec(self) -> CodecSpec:
        """The codec's spec."""
        return CODECS[self.codec]

    def output_args(self) -> list[str]:
        """ffmpeg output options for this rendition."""
        return self.spec.output_args(self.bitrate_kbps, self.tuning)


@dataclass(frozen=True, slots=True)
class Profile:
    """How a kind of content is processed and encoded."""

    name: str
    highpass_hz: int
    lowpass_hz: int
    bitrates_kbps: Mapping[str, int]
    opus_application: str

    def format(self, codec: str) -> Format:
        """The rendition of this profile in `codec`."""
        if codec not in CODECS:
            raise AudioError(f"unsupported codec {codec!r}", hint=f"use one of {', '.join(CODECS)}")
        tuning = ("-application", self.opus_application) if codec == "opus" else ()
        return Format(codec, self.bitrates_kbps[codec], tuning)

    def formats(self, codecs: Iterable[str]) -> tuple[Format, ...]:
        """One rendition per distinct codec, the preferred codec first."""
        return tuple(self.format(c) for c in order_codecs(codecs))


PROFILES: dict[str, Profile] = {
    # 120 Hz–8 kHz: what a horn reproduces and what Opus carries at 24 kbps (wideband), so the
    # loudness measured before encoding is the loudness that comes out of the decoder.
    "speech": Profile("speech", 120, 8000, {"opus": 24, "mp3": 48}, "voip"),
    # Horns roll off far above 60 Hz; the filter only removes rumble and DC that waste amplifier power.
    "music": Profile("music", 60, 12000, {"opus": 64, "mp3": 96}, "audio"),
}
DEFAULT_PROFILE = "speech"


def profile(name: str) -> Profile:
    """A processing profile by name; AudioError naming the known ones."""
    try:
        return PROFILES[name]
    except KeyError:
        raise AudioError(f"unknown profile {name!r}", hint=f"use one of {', '.join(PROFILES)}") from None


@dataclass(frozen=True, slots=True)
class EncodedAudio:
    """One encoded rendition of a bulletin, identified by the sha256 of its bytes."""

    data: bytes = field(repr=False)
    sha256: str
    codec: str
    container: str
    bitrate_kbps: int
    duration_ms: int
    size: int
    source_name: str
    loudness_lufs: float | None = None
    true_peak_dbtp: float | None = None

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
        cls,
        data: bytes,
        *,
        codec: str,
        bitrate_kbps: int,
        duration_ms: int,
        source_name: str,
        loudness_lufs: float | None = None,
        true_peak_dbtp: float | None = None,
    ) -> EncodedAudio:
        """Wrap encoded bytes, computing their hash and size."""
        digest = hashlib.sha256(data).hexdigest()
        container = CODECS[codec].container
        return cls(
            data,
            digest,
            codec,
            container,
            bitrate_kbps,
            duration_ms,
            len(data),
            source_name,
            loudness_lufs,
            true_peak_dbtp,
        )

    @property
    def extension(self) -> str:
        """File extension for this content, without the dot."""
        return self.container
