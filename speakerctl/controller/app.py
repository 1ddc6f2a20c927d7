"""Application services the CLI calls: opening the store, importing bulletins, reporting."""

from __future__ import annotations

import getpass
from collections.abc import Sequence
from pathlib import Path

from devices.inventory import Inventory, load_inventory
from speakerctl.audio import ContentStore, EncodedAudio, import_audio
from speakerctl.clock import Clock
from speakerctl.config import Settings
from speakerctl.store import BulletinInfo, DeviceSpec, Store, VariantInfo, ZoneInfo

DEFAULT_CODECS = ("opus", "mp3")
BITRATES = {"opus": 24, "mp3": 48}


def open_store(settings: Settings, *, sync_inventory: bool = True) -> Store:
    """Open (and create) the store, loading the fleet inventory into it."""
    store = Store.open(settings.db_url)
    if sync_inventory:
        load_fleet(store, load_inventory(settings.inventory))
    return store


def load_fleet(store: Store, inventory: Inventory) -> None:
    """Upsert the inventory's zones and devices."""
    store.sync_zones(ZoneInfo(z.id, z.name, z.kind, z.parent, i) for i, z in enumerate(inventory.zones))
    store.sync_devices(
        DeviceSpec(d.id, d.name, d.zone, d.model, d.lat, d.lon, d.network) for d in inventory.devices
    )


def import_bulletin(
    store: Store,
    settings: Settings,
    clock: Clock,
    path: Path,
    title: str | None,
    codecs: Sequence[str] = DEFAULT_CODECS,
) -> tuple[BulletinInfo, bool]:
    """Encode a file once per codec, store the content and the bulletin; (bulletin, created)."""
    encoded = [import_audio(path, codec=c, bitrate_kbps=BITRATES[c]) for c in codecs]
    existing = store.bulletin_by_sha(encoded[0].sha256)
    if existing is not None:
        return existing, False
    content = ContentStore(settings.content_dir)
    for item in encoded:
        content.put(item)
    primary = encoded[0]
    bulletin = store.add_bulletin(
        title=title or path.stem,
        sha256=primary.sha256,
        codec=primary.codec,
        container=primary.container,
        bitrate_kbps=primary.bitrate_kbps,
        duration_ms=primary.duration_ms,
        size=primary.size,
        source_name=path.name,
        created_by=_user(),
        created_at=clock.now(),
        variants=[_variant(e) for e in encoded],
    )
    return bulletin, True


def _variant(audio: EncodedAudio) -> VariantInfo:
    return VariantInfo(
        audio.codec, audio.container, audio.bitrate_kbps, audio.sha256, audio.size, audio.duration_ms
    )


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def zone_path(store: Store, zone_id: str) -> str:
    """The zone's names from the root down, e.g. "Sóc Trăng › Kế Sách › An Mỹ"."""
    zones = {z.id: z for z in store.zones()}
    names: list[str] = []
    current: str | None = zone_id
    while current is not None and current in zones and len(names) < len(zones):
        names.append(zones[current].name)
        current = zones[current].parent_id
    return " › ".join(reversed(names))
