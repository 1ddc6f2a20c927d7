"""What every application service is given: validated settings and the clock the composition root built."""

from __future__ import annotations

from dataclasses import dataclass

from devices.inventory import Inventory, load_inventory
from speakerctl.clock import Clock
from speakerctl.config import Settings
from speakerctl.scheduler.book import ScheduleBook
from speakerctl.store import DeviceSpec, Store, ZoneInfo


@dataclass(frozen=True, slots=True)
class AppContext:
    """Settings and time for one command or one running controller."""

    settings: Settings
    clock: Clock

    def store(self, *, sync_inventory: bool = True) -> Store:
        """Open the store (loading the inventory into it unless told not to)."""
        return open_store(self.settings, sync_inventory=sync_inventory)

    def book(self) -> ScheduleBook:
        """Open the schedule book."""
        return ScheduleBook(self.settings.db_url)

    def inventory(self) -> Inventory:
        """The fleet inventory file, loaded."""
        return load_inventory(self.settings.inventory)


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
