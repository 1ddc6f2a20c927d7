"""Where an actor's broadcast goes: on air at once, or into an approval queue (Circular 39).

The zone helpers here are what every service hands authorize(): the store's zone tree and the zones a
list of targets names.
"""

from __future__ import annotations

from collections.abc import Collection

from speakerctl.fleet.zonetree import ZoneTree
from speakerctl.store import Store


def zone_tree(store: Store) -> ZoneTree:
    """The zone tree the store holds."""
    return ZoneTree(store.zones.all())


def zones_of(store: Store, targets: Collection[str]) -> list[str]:
    """The zone of each target: a zone id as itself, a device id as its zone (NotFound if neither)."""
    tree = zone_tree(store)
    devices = {d.id: d.zone_id for d in store.devices.all()} if set(targets) - tree.zones.keys() else {}
    return [t if t in tree.zones else devices.get(t) or store.devices.get(t).zone_id for t in targets]
