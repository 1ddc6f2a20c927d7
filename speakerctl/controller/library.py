"""The bulletin library: render and store bulletins, show where they aired, export and remove them.

Each bulletin is encoded once per codec the fleet plays (the union of the codecs its hardware
profiles declare, Opus first), never once per device. Content and rows are stored under the
content store's lock and in one transaction, so a failure leaves neither orphan rows nor files.
"""

from __future__ import annotations

import getpass
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from speakerctl.audio import (
    CODECS,
    ContentStore,
    EncodedAudio,
    Processing,
    Rendering,
    order_codecs,
    render,
)
from speakerctl.audio.pipeline import Progress
from speakerctl.audio.sequence import Composition, Recording, Speech
from speakerctl.clock import Clock
from speakerctl.config import Settings
from speakerctl.errors import ConfigError, InUse, NotFound, StoreError
from speakerctl.files import PUBLIC, display_name, write_atomic
from speakerctl.fleet import HardwareProfile, Inventory, load_inventory, load_profiles
from speakerctl.store import Airing, BulletinInfo, Store, VariantInfo

TITLE_WORDS = 8
"""A bulletin made from text is titled with its first words."""


@dataclass(frozen=True, slots=True)
class Imported:
    """A bulletin after an import, and whether the import created it (False: already there)."""

    bulletin: BulletinInfo
    created: bool


@dataclass(frozen=True, slots=True)
class Details:
    """Everything `bulletin show` tells about one bulletin."""

    bulletin: BulletinInfo
    variants: list[VariantInfo]
    airings: list[Airing]


def codecs_for(models: Iterable[HardwareProfile]) -> tuple[str, ...]:
    """The codecs to encode for these cluster models: each model gets one it plays, Opus first."""
    chosen: list[str] = []
    for model in models:
        playable = [c for c in model.codecs if c in CODECS]
        if not playable:
            raise ConfigError(
                f"cluster model {model.id!r} plays only {', '.join(model.codecs)}, "
                f"and speakerctl encodes {', '.join(CODECS)}",
                hint="fix the model's codecs in its hardware profile",
            )
        chosen.extend(playable)
    return order_codecs(chosen)


def fleet_codecs(
    inventory: Inventory, profiles: Mapping[str, HardwareProfile] | None = None
) -> tuple[str, ...]:
    """The codecs the models of an inventory play, each once, Opus first."""
    profiles = load_profiles() if profiles is None else profiles
    models = dict.fromkeys(d.model for d in inventory.devices)
    return codecs_for(profiles[m] for m in models)


def processing_for(settings: Settings) -> Processing:
    """The processing chain's numbers from the settings."""
    return Processing(
        target_lufs=settings.loudness_lufs,
        true_peak_dbtp=settings.true_peak_dbtp,
        max_duration_s=settings.max_duration_s,
    )


def add_bulletin(
    store: Store,
    settings: Settings,
    clock: Clock,
    composition: Composition,
    *,
    codecs: Sequence[str] | None = None,
    progress: Progress | None = None,
    created_by: str = "",
) -> Imported:
    """Render a composition for the fleet and add it to the library (or find it already there).

    `created_by` is the acting user's name (default: the local account's).
    """
    rendering = render(
        composition,
        codecs or fleet_codecs(load_inventory(settings.inventory)),
        processing=processing_for(settings),
        chime=Path(settings.chime_file) if settings.chime_file else None,
        scratch_dir=settings.data_dir / "tmp",
        progress=progress,
    )
    title = composition.title or default_title(composition)
    return _save(store, settings, clock, rendering, (title, created_by or _user()))


def _save(
    store: Store, settings: Settings, clock: Clock, rendering: Rendering, labels: tuple[str, str]
) -> Imported:
    """Store the renditions and the bulletin, all or nothing, unless the content is known."""
    content = ContentStore(settings.content_dir)
    primary = rendering.primary
    with content.lock():
        existing = store.bulletins.by_sha(primary.sha256)
        if existing is not None:
            return Imported(existing, False)
        new = {r.sha256 for r in rendering.renditions if not content.has(r.sha256)}
        try:
            for rendition in rendering.renditions:
                content.put(rendition)
            bulletin = _record(store, clock, rendering, labels)
        except BaseException:
            content.discard(new)
            raise
    return Imported(bulletin, True)


def _record(store: Store, clock: Clock, rendering: Rendering, labels: tuple[str, str]) -> BulletinInfo:
    """The bulletin's row and its encodings, in one transaction; `labels`: (title, created_by)."""
    primary = rendering.primary
    title, created_by = labels
    return store.bulletins.add(
        title=title,
        sha256=primary.sha256,
        codec=primary.codec,
        container=primary.container,
        bitrate_kbps=primary.bitrate_kbps,
        duration_ms=primary.duration_ms,
        size=primary.size,
        source_name=rendering.source_name,
        created_by=created_by,
        created_at=clock.now(),
        variants=[_variant(r) for r in rendering.renditions],
        loudness_lufs=primary.loudness_lufs,
        true_peak_dbtp=primary.true_peak_dbtp,
        profile=rendering.profile,
    )


def default_title(composition: Composition) -> str:
    """A title from the first recording's file name or the first words of the first text."""
    for item in composition.items:
        if isinstance(item, Recording):
            return display_name(item.path.stem)
        if isinstance(item, Speech):
            words = item.text.split()
            return " ".join(words[:TITLE_WORDS]) + (" …" if len(words) > TITLE_WORDS else "")
    return "Chuông"


def _variant(audio: EncodedAudio) -> VariantInfo:
    return VariantInfo(
        audio.codec, audio.container, audio.bitrate_kbps, audio.sha256, audio.size, audio.duration_ms
    )


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def details(store: Store, bulletin_id: int) -> Details:
    """A bulletin, its encodings and its broadcasts (NotFound if unknown or removed)."""
    return Details(
        store.bulletins.get(bulletin_id),
        store.bulletins.variants(bulletin_id),
        store.broadcasts.airings(bulletin_id),
    )


def schedules_using(store: Store, bulletin_id: int) -> list[str]:
    """Names of the schedules that air this bulletin."""
    found = store.schedules.all()
    return [f"{s.id} ({s.name})" if s.name else s.id for s in found if s.bulletin_id == bulletin_id]


def remove_bulletin(store: Store, settings: Settings, clock: Clock, bulletin_id: int) -> BulletinInfo:
    """Remove a bulletin unless a schedule or a running broadcast needs it; delete unused content."""
    store.bulletins.get(bulletin_id)
    users = schedules_using(store, bulletin_id)
    if users:
        raise InUse(
            f"bulletin {bulletin_id} is used by schedule {', '.join(users)}",
            hint="remove those schedules first (`speakerctl schedule rm ID`)",
        )
    content = ContentStore(settings.content_dir)
    with content.lock():
        removed, unused = store.bulletins.remove(bulletin_id, clock.now())
        content.discard(unused)
    return removed


def export_bulletin(
    store: Store,
    settings: Settings,
    bulletin_id: int,
    destination: Path,
    *,
    codec: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Copy a bulletin's encoding (the primary one, or `codec`'s) to a file or into a directory."""
    bulletin = store.bulletins.get(bulletin_id)
    variant = _pick(store.bulletins.variants(bulletin_id), codec, bulletin_id)
    data = ContentStore(settings.content_dir).read(variant.sha256)
    if destination.is_dir():
        destination = destination / f"{slug(bulletin.title)}-{bulletin.id}.{variant.container}"
    if destination.exists() and not overwrite:
        raise StoreError(f"{destination} already exists", hint="pass --force to replace it")
    try:
        write_atomic(destination, data, mode=PUBLIC)
    except OSError as exc:
        raise StoreError(f"cannot write {destination}: {exc.strerror or exc}") from exc
    return destination


def _pick(variants: list[VariantInfo], codec: str | None, bulletin_id: int) -> VariantInfo:
    """The variant in `codec`, or the first."""
    if codec is None:
        return variants[0]
    for variant in variants:
        if variant.codec == codec:
            return variant
    have = ", ".join(v.codec for v in variants)
    raise NotFound(f"bulletin {bulletin_id} has no {codec} encoding (it has {have})")


def slug(title: str) -> str:
    """A file-name-safe form of a title, without diacritics: "Bản tin sáng" → "ban-tin-sang"."""
    plain = unicodedata.normalize("NFKD", title.replace("đ", "d").replace("Đ", "D"))
    ascii_only = plain.encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]+", "-", ascii_only).strip("-")[:60] or "bulletin"
