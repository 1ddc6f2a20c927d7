"""What every application service is given: validated settings and the clock the composition root built."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from speakerctl.clock import Clock
from speakerctl.config import Settings
from speakerctl.fleet import Inventory, Zone, load_inventory
from speakerctl.scheduler.book import ScheduleBook
from speakerctl.store import DeviceSpec, Store


@dataclass(frozen=True, slots=True)
class AppContext:
    """Settings and time for one command or one running controller."""

    settings: Settings
    clock: Clock

    def store(self, *, sync_inventory: bool = True) -> Store:
        """Open the store (loading the inventory into it unless told not to)."""
        return open_store(self.settings, sync_inventory=sync_inventory)

    def book(self) -> ScheduleBook:
        """Open the schedule book (on a store of its own, closed with the book)."""
        return ScheduleBook.open(self.settings.db_url)

    def inventory(self) -> Inventory:
        """The fleet inventory file, loaded."""
        return load_inventory(self.settings.inventory)


def open_store(settings: Settings, *, sync_inventory: bool = True) -> Store:
    """Open (and create) the store, loading the fleet inventory into it if it changed."""
    store = Store.open(settings.db_url)
    if sync_inventory:
        load_fleet(store, load_inventory(settings.inventory))
    return store


def load_fleet(store: Store, inventory: Inventory) -> bool:
    """Upsert the inventory's zones and devices unless the store already holds them; True if it wrote."""
    # A remap (`zones remap --apply`) outranks an inventory file that predates it: zones it retired stay
    # retired and clusters it moved stay where it put them, whichever inventory is configured.
    retired = store.zones.retired()
    zones = [z for z in inventory.zones if z.id not in retired]
    placed = {d.id: d.zone_id for d in store.devices.all()} if retired else {}
    devices = [
        DeviceSpec(
            d.id,
            d.name,
            placed.get(d.id, d.zone) if d.zone in retired else d.zone,
            d.model,
            d.lat,
            d.lon,
            d.network,
        )
        for d in inventory.devices
    ]
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
