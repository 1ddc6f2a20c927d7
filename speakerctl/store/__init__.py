"""The controller's database: the only code that imports sqlmodel; plain dataclasses in and out."""

from speakerctl.store.library import Airing
from speakerctl.store.models import (
    BroadcastInfo,
    BroadcastState,
    BulletinInfo,
    DeliveryInfo,
    DeliveryStatus,
    DeliveryUpdate,
    DeviceInfo,
    DeviceSpec,
    DeviceSpecLike,
    StatusRecord,
    VariantInfo,
    utc_from_ms,
)
from speakerctl.store.monitoring import AlertFinding, AlertInfo, AuditEntry, PlayRecord
from speakerctl.store.repository import Store
from speakerctl.store.tables import SCHEMA_VERSION

__all__ = [
    "SCHEMA_VERSION",
    "Airing",
    "AlertFinding",
    "AlertInfo",
    "AuditEntry",
    "BroadcastInfo",
    "BroadcastState",
    "BulletinInfo",
    "DeliveryInfo",
    "DeliveryStatus",
    "DeliveryUpdate",
    "DeviceInfo",
    "DeviceSpec",
    "DeviceSpecLike",
    "PlayRecord",
    "StatusRecord",
    "Store",
    "VariantInfo",
    "utc_from_ms",
]
