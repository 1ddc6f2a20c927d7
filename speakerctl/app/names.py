"""The one resolver of zone and cluster names typed by people, for every command and form that takes one.

Ids work as before; names work without diacritics ("ke sach" → Kế Sách), and a zone also answers to
its kind and name ("thi tran ke sach"). See `speakerctl.fleet.names` for the matching rules.
"""

from __future__ import annotations

from collections.abc import Sequence

from speakerctl.fleet import ZoneKind
from speakerctl.fleet.names import Named, resolve
from speakerctl.fleet.zonetree import kind_name, kind_names
from speakerctl.i18n import _
from speakerctl.store import Store


def zone_choices(store: Store) -> list[Named]:
    """Every zone as something a command can name."""
    return [
        Named(z.id, z.name, kind_name(z.kind), tuple(f"{k} {z.name}" for k in kind_names(ZoneKind(z.kind))))
        for z in store.zones.all()
    ]


def device_choices(store: Store) -> list[Named]:
    """Every cluster as something a command can name."""
    return [Named(d.id, d.name, _("cluster")) for d in store.devices.all()]


def zone_id(store: Store, text: str) -> str:
    """The id of the zone `text` names (its id or its name, diacritics optional)."""
    return resolve(text, zone_choices(store), _("zone")).id


def device_id(store: Store, text: str) -> str:
    """The id of the cluster `text` names."""
    return resolve(text, device_choices(store), _("cluster")).id


def target_ids(store: Store, texts: Sequence[str]) -> list[str]:
    """The ids of the zones or clusters named, in order (an exact id first, then names)."""
    zones = zone_choices(store)
    everything = [*zones, *device_choices(store)]
    return [_target(text, zones, everything) for text in texts]


def _target(text: str, zones: list[Named], everything: list[Named]) -> str:
    known = {z.id for z in zones}
    if text in known:
        return text
    return resolve(text, everything, _("zone or device")).id
