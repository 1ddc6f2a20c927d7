"""Application services the CLI calls: opening the store, importing bulletins, reporting."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from speakerctl.audio import DEFAULT_PROFILE, Composition, Recording, with_chimes
from speakerctl.audio.pipeline import Progress
from speakerctl.clock import Clock
from speakerctl.config import Settings
from speakerctl.controller.library import add_bulletin
from speakerctl.fleet import Inventory, Zone, ZoneTree, load_inventory
from speakerctl.store import BulletinInfo, DeviceSpec, Store


def open_store(settings: Settings, *, sync_inventory: bool = True) -> Store:
    """Open (and create) the store, loading the fleet inventory into it if it changed."""
    store = Store.open(settings.db_url)
    if sync_inventory:
        load_fleet(store, load_inventory(settings.inventory))
    return store


def load_fleet(store: Store, inventory: Inventory) -> bool:
    """Upsert the inventory's zones and devices unless the store already holds them; True if it wrote."""
    zones = list(inventory.zones)
    devices = [DeviceSpec(d.id, d.name, d.zone, d.model, d.lat, d.lon, d.network) for d in inventory.devices]
    # Read first: read-only commands then never take the write lock a running `serve` needs.
    if _holds(store, zones, devices):
        return False
    store.zones.sync(zones)
    store.devices.sync(devices)
    return True


def _holds(store: Store, zones: Sequence[Zone], devices: Sequence[DeviceSpec]) -> bool:
    """Whether every zone and device is in the store with exactly these inventory fields."""
    wanted = set(zones)
    if [z for z in store.zones.all() if z in wanted] != list(zones):
        return False
    stored = {
        DeviceSpec(d.id, d.name, d.zone_id, d.model, d.lat, d.lon, d.network) for d in store.devices.all()
    }
    return set(devices) <= stored


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
) -> tuple[BulletinInfo, bool]:
    """Process and encode a file once per codec the fleet plays, and store it; (bulletin, created)."""
    composition = Composition(with_chimes([Recording(path)], chime), title, profile)
    imported = add_bulletin(store, settings, clock, composition, codecs=codecs, progress=progress)
    return imported.bulletin, imported.created


def zone_path(store: Store, zone_id: str) -> str:
    """The zone's names from the root down, e.g. "Sóc Trăng › Kế Sách › An Mỹ"."""
    return ZoneTree(store.zones.all()).path(zone_id)
