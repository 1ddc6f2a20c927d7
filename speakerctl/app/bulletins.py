"""Bulletins: import audio, speak text, compose sequences; list, show, export and remove them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from speakerctl.app import audit, records, views
from speakerctl.app.access import Action, Actor, authorize
from speakerctl.app.context import AppContext
from speakerctl.app.policy import zone_tree
from speakerctl.audio import (
    DEFAULT_PROFILE,
    DEFAULT_RATE_WPM,
    Composition,
    ContentStore,
    Recording,
    Speech,
    Voice,
    load_composition,
    parse_item,
    read_text,
    with_chimes,
)
from speakerctl.audio.pipeline import Progress
from speakerctl.clock import Clock
from speakerctl.config import Settings
from speakerctl.controller import library
from speakerctl.files import display_name
from speakerctl.store import BulletinInfo, Store

__all__ = [
    "DEFAULT_RATE_WPM",
    "Composition",
    "add",
    "details",
    "export",
    "finish",
    "import_bulletin",
    "import_file",
    "list_all",
    "remove",
    "sequence",
    "speech",
]


def speech(text: str | None, file: Path | None, voice: str, rate: int, title: str | None) -> Composition:
    """A composition of Vietnamese text, given inline or (if `file`) as a UTF-8 file."""
    spoken = (
        Speech(read_text(file), Voice(voice, rate), display_name(file))
        if file is not None
        else Speech(text or "", Voice(voice, rate))
    )
    return Composition((spoken,), title)


def sequence(
    items: Sequence[str],
    from_file: Path | None,
    voice: str,
    rate: int,
    *,
    gap_s: float | None = None,
    title: str | None = None,
    profile: str | None = None,
) -> Composition:
    """A composition from item specs (chime, say:TEXT, FILE…) or (if `from_file`) a TOML file."""
    if from_file is not None:
        base = load_composition(from_file)
    else:
        base = Composition(tuple(parse_item(spec, Voice(voice, rate)) for spec in items))
    return Composition(
        base.items, title or base.title, profile or base.profile, base.gap_s if gap_s is None else gap_s
    )


def finish(composition: Composition, profile: str, chime: bool) -> Composition:
    """The composition with the processing profile and, if asked, a chime before and after."""
    return Composition(
        with_chimes(list(composition.items), chime), composition.title, profile, composition.gap_s
    )


def _may_import(store: Store, actor: Actor) -> None:
    """Bulletins belong to the whole installation: the role decides, not the zone."""
    authorize(actor, Action.IMPORT, [], zone_tree(store))


def _audited(store: Store, clock: Clock, actor: Actor, found: BulletinInfo, created: bool) -> None:
    outcome = "ok" if created else "known"
    audit.record(
        store,
        actor,
        "import",
        clock.now(),
        subject=f"bulletin {found.id}",
        outcome=outcome,
        detail=found.title,
    )


def add(
    ctx: AppContext, composition: Composition, progress: Progress | None = None, *, actor: Actor
) -> views.ImportedView:
    """Render a composition for the fleet into the library (or find it already there)."""
    store = ctx.store(sync_inventory=False)
    _may_import(store, actor)
    done = library.add_bulletin(
        store, ctx.settings, ctx.clock, composition, progress=progress, created_by=actor.name
    )
    _audited(store, ctx.clock, actor, done.bulletin, done.created)
    return records.imported(done.bulletin, done.created)


def import_bulletin(
    store: Store,
    settings: Settings,
    clock: Clock,
    path: Path,
    title: str | None,
    codecs: Sequence[str] | None = None,
    *,
    profile: str = DEFAULT_PROFILE,
    chime: bool = False,
    progress: Progress | None = None,
    created_by: str = "",
) -> tuple[BulletinInfo, bool]:
    """Process and encode a file once per codec the fleet plays, and store it; (bulletin, created)."""
    composition = Composition(with_chimes([Recording(path)], chime), title, profile)
    imported = library.add_bulletin(
        store, settings, clock, composition, codecs=codecs, progress=progress, created_by=created_by
    )
    return imported.bulletin, imported.created


def import_file(
    ctx: AppContext,
    path: Path,
    title: str | None = None,
    *,
    profile: str = DEFAULT_PROFILE,
    chime: bool = False,
    progress: Progress | None = None,
    actor: Actor,
) -> views.ImportedView:
    """Process and encode an audio file once per codec the fleet plays, and add it to the library."""
    store = ctx.store(sync_inventory=False)
    _may_import(store, actor)
    found, created = import_bulletin(
        store,
        ctx.settings,
        ctx.clock,
        path,
        title,
        profile=profile,
        chime=chime,
        progress=progress,
        created_by=actor.name,
    )
    _audited(store, ctx.clock, actor, found, created)
    return records.imported(found, created)


def list_all(ctx: AppContext) -> list[views.BulletinView]:
    """Every bulletin in the library."""
    return [records.bulletin(b) for b in ctx.store(sync_inventory=False).bulletins.all()]


def details(ctx: AppContext, bulletin_id: int) -> views.BulletinDetailView:
    """A bulletin with its encodings and where and when it played."""
    store = ctx.store(sync_inventory=False)
    found = library.details(store, bulletin_id)
    zone_names = {z.id: z.name for z in store.zones.all()}
    fields = records.bulletin_fields(found.bulletin) | {
        "variants": [records.variant(v) for v in found.variants],
        "airings": [records.airing(a, zone_names) for a in found.airings],
    }
    return views.BulletinDetailView.model_validate(fields)


def export(
    ctx: AppContext, bulletin_id: int, path: Path, codec: str | None = None, *, overwrite: bool = False
) -> views.ExportedView:
    """Write a bulletin's encoded audio to a file (or into a directory)."""
    store = ctx.store(sync_inventory=False)
    written = library.export_bulletin(
        store, ctx.settings, bulletin_id, path, codec=codec, overwrite=overwrite
    )
    return views.ExportedView(id=bulletin_id, path=str(written), size=written.stat().st_size)


def remove(ctx: AppContext, bulletin_id: int, *, actor: Actor) -> views.RemovedView:
    """Remove a bulletin unless it is on air or scheduled; its history stays."""
    store = ctx.store(sync_inventory=False)
    _may_import(store, actor)
    removed = library.remove_bulletin(store, ctx.settings, ctx.clock, bulletin_id)
    audit.record(store, actor, "bulletin_remove", ctx.clock.now(), subject=f"bulletin {bulletin_id}")
    return views.RemovedView(id=removed.id, title=removed.title, removed=True)


def library_of(store: Store) -> list[views.BulletinView]:
    """Every bulletin in the library of an open store (the console's)."""
    return [records.bulletin(b) for b in store.bulletins.all()]


AUDIO_TYPES = {"ogg": "audio/ogg", "webm": "audio/webm", "mp3": "audio/mpeg", "opus": "audio/ogg"}


def audio_file(store: Store, settings: Settings, bulletin_id: int) -> tuple[Path, str]:
    """The file of a bulletin's primary encoding and its media type, for listening before airing it."""
    variant = store.bulletins.variants(bulletin_id)[0]
    path = ContentStore(settings.content_dir).path(variant.sha256)
    return path, AUDIO_TYPES.get(variant.container, "application/octet-stream")
