"""The controller's fleet database: the zone tree, the clusters placed on it, hardware profiles, loaders.

Pure: it reads files (the packaged ones by importlib.resources) and imports only protocol, errors, i18n
(zone kinds for people) and the standard library. What runs on a cluster never imports it; a cluster
gets its own provisioning record.
"""

from speakerctl.fleet.loading import (
    DEFAULT_INVENTORY,
    available_inventories,
    inventory_from_dict,
    load_inventory,
)
from speakerctl.fleet.profiles import HardwareProfile, load_profiles, profiles_from_dict
from speakerctl.fleet.provisioning import provisioning_records, write_bundle, write_provisioning
from speakerctl.fleet.records import DeviceSpec, Inventory, Network, scaled_inventory
from speakerctl.fleet.validate import FORMAT
from speakerctl.fleet.zonetree import PATH_SEPARATOR, Zone, ZoneKind, ZoneTree, kind_name, zone_title

__all__ = [
    "DEFAULT_INVENTORY",
    "FORMAT",
    "PATH_SEPARATOR",
    "DeviceSpec",
    "HardwareProfile",
    "Inventory",
    "Network",
    "Zone",
    "ZoneKind",
    "ZoneTree",
    "available_inventories",
    "inventory_from_dict",
    "kind_name",
    "load_inventory",
    "load_profiles",
    "profiles_from_dict",
    "provisioning_records",
    "scaled_inventory",
    "write_bundle",
    "write_provisioning",
    "zone_title",
]
