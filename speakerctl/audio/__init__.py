"""Audio: the only code that runs ffmpeg, pydub and espeak-ng. Import, process, encode, store."""

from speakerctl.audio.content_store import ContentStore
from speakerctl.audio.formats import (
    CODECS,
    DEFAULT_PROFILE,
    PROFILES,
    CodecSpec,
    EncodedAudio,
    Format,
    Profile,
    order_codecs,
)
from speakerctl.audio.pipeline import Rendering, import_audio, render
from speakerctl.audio.processing import DEFAULT_MAX_DURATION_S, Processing
from speakerctl.audio.sequence import (
    Chime,
    Composition,
    Item,
    Recording,
    Silence,
    Speech,
    load_composition,
    parse_item,
    read_text,
    with_chimes,
)
from speakerctl.audio.signals import (
    generate_noise,
    generate_speechlike,
    generate_tone,
    write_default_chime,
)
from speakerctl.audio.tts import DEFAULT_RATE_WPM, DEFAULT_VOICE, VOICES, Voice

__all__ = [
    "CODECS",
    "DEFAULT_MAX_DURATION_S",
    "DEFAULT_PROFILE",
    "DEFAULT_RATE_WPM",
    "DEFAULT_VOICE",
    "PROFILES",
    "VOICES",
    "Chime",
    "CodecSpec",
    "Composition",
    "ContentStore",
    "EncodedAudio",
    "Format",
    "Item",
    "Processing",
    "Profile",
    "Recording",
    "Rendering",
    "Silence",
    "Speech",
    "Voice",
    "generate_noise",
    "generate_speechlike",
    "generate_tone",
    "import_audio",
    "load_composition",
    "order_codecs",
    "parse_item",
    "read_text",
    "render",
    "with_chimes",
    "write_default_chime",
]
