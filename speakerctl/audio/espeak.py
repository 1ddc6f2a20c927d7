"""The espeak-ng library of the espeakng-loader wheel, driven through ctypes in a child process.

espeak-ng keeps state across calls (the phase of its pitch flutter, its noise generator), so the
same sentence spoken twice in one process comes out slightly different. Each synthesis therefore
runs in a fresh process (`python -m speakerctl.audio.espeak`), which makes the audio — and the
bulletin's sha256 — the same for the same text, and keeps a crash in the C library out of the
controller. The child reads {"voice", "rate", "sentences", "pause_ms", "path"} as JSON on stdin,
writes the WAV, and prints one line per sentence spoken.
"""

from __future__ import annotations

import ctypes
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from speakerctl.audio import pcm
from speakerctl.errors import AudioError

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000
_CHARS_UTF8 = 1
_POS_CHARACTER = 1
_PARAM_RATE = 1
_EE_OK = 0
_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


@dataclass(frozen=True, slots=True)
class Request:
    """What the child process is asked to speak."""

    voice: str
    rate_wpm: int
    sentences: list[str]
    pause_ms: int
    path: Path


class Engine:
    """espeak-ng, initialised for synchronous synthesis into a callback."""

    def __init__(self) -> None:
        self.lib, data_root = _load()
        rate = self.lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, str(data_root).encode(), _INITIALIZE_DONT_EXIT
        )
        if rate <= 0:
            raise AudioError(f"text to speech: espeak-ng failed to start with its data in {data_root}")
        self.sample_rate_hz: int = rate
        self._chunks: list[bytes] = []
        self._callback = _CALLBACK(self._collect)  # kept referenced: espeak-ng calls it later
        self.lib.espeak_SetSynthCallback(self._callback)

    def _collect(self, wav: ctypes._Pointer[ctypes.c_short], count: int, _events: int) -> int:
        """espeak-ng's synth callback: keep the samples, and go on (0)."""
        if count > 0:
            self._chunks.append(ctypes.string_at(wav, count * 2))
        return 0

    def speak(self, text: str, voice: str, rate_wpm: int) -> bytes:
        """The 16-bit samples of one piece of text."""
        self._chunks = []
        self._check(self.lib.espeak_SetVoiceByName(voice.encode()), f"use the voice {voice!r}")
        self._check(self.lib.espeak_SetParameter(_PARAM_RATE, rate_wpm, 0), "set the rate")
        data = text.encode("utf-8") + b"\0"
        self._check(
            self.lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None), "speak"
        )
        return b"".join(self._chunks)

    @staticmethod
    def _check(code: int, what: str) -> None:
        """AudioError unless espeak-ng answered EE_OK."""
        if code != _EE_OK:
            raise AudioError(f"text to speech: espeak-ng could not {what} (error {code})")


def _load() -> tuple[ctypes.CDLL, Path]:
    """The library and the directory holding espeak-ng-data, from the wheel."""
    try:
        import espeakng_loader

        library = ctypes.CDLL(espeakng_loader.get_library_path())
        data_root = Path(espeakng_loader.get_data_path()).parent
    except (ImportError, OSError, RuntimeError) as exc:
        hint = "reinstall speakerctl's dependencies (the espeakng-loader wheel)"
        raise AudioError(f"text to speech is unavailable: {exc}", hint=hint) from exc
    library.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    library.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    library.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    library.espeak_SetSynthCallback.argtypes = [_CALLBACK]
    library.espeak_Synth.argtypes = [
        ctypes.c_char_p,
        ctypes.c_size_t,
        ctypes.c_uint,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.c_uint,
        ctypes.c_void_p,
        ctypes.c_void_p,
    ]
    return library, data_root


def speak(request: Request) -> None:
    """Speak every sentence, a pause after each, into one WAV; a line on stdout per sentence."""
    engine = Engine()
    rate = engine.sample_rate_hz
    pause = pcm.silence(request.pause_ms, rate)
    parts = []
    for index, sentence in enumerate(request.sentences, 1):
        parts += [pcm.segment(engine.speak(sentence, request.voice, request.rate_wpm), rate), pause]
        print(index, flush=True)
    pcm.write_wav(pcm.join(parts, rate), request.path)


def main() -> int:
    """The child process: a request on stdin, the WAV at its path, errors on stderr."""
    try:
        raw = json.loads(sys.stdin.read())
        request = Request(
            str(raw["voice"]),
            int(raw["rate"]),
            [str(s) for s in raw["sentences"]],
            int(raw["pause_ms"]),
            Path(raw["path"]),
        )
        speak(request)
    except AudioError as exc:
        print(exc, file=sys.stderr)
        return 1
    except (ValueError, KeyError, TypeError) as exc:
        print(f"text to speech: bad request ({exc})", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
