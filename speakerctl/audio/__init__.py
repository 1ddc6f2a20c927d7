"""Audio: the only code that runs ffmpeg. Import and encode files, store content by hash."""

from speakerctl.audio.content_store import ContentStore
from speakerctl.audio.encode import (
    CODECS,
    DEFAULT_MAX_DURATION_S,
    CodecSpec,
    EncodedAudio,
    generate_speechlike,
    generate_tone,
    import_audio,
)

__all__ = [
    "CODECS",
    "DEFAULT_MAX_DURATION_S",
    "CodecSpec",
    "ContentStore",
    "EncodedAudio",
    "generate_speechlike",
    "generate_tone",
    "import_audio",
]
