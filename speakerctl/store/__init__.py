"""The controller's database: the only code that imports SQLAlchemy, sqlmodel and Alembic.

Plain dataclasses in and out; `Store` holds one engine and a repository per kind of record.
"""

from speakerctl.store.accounts import SessionInfo, UserInfo
from speakerctl.store.approvals import Decision, ItemInfo, ItemKind, ItemState, NewItem
from speakerctl.store.broadcasts import Airing
from speakerctl.store.coordination import LEADER, Claim, Fence, member_lease
from speakerctl.store.database import Store
from speakerctl.store.live import LiveClusterRecord, LiveRecord
from speakerctl.store.migrate import SCHEMA_REVISION
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
    StopOrder,
    VariantInfo,
    utc_from_ms,
)
from speakerctl.store.monitoring import AlertFinding, AlertInfo, AuditEntry, PlayRecord, acknowledge_action
from speakerctl.store.remap import RemapChange
from speakerctl.store.schedules import JOBS_TABLE, RunRecord, ScheduleRecord

__all__ = [
    "JOBS_TABLE",
    "LEADER",
    "SCHEMA_REVISION",
    "Airing",
    "AlertFinding",
    "AlertInfo",
    "AuditEntry",
    "BroadcastInfo",
    "BroadcastState",
    "BulletinInfo",
    "Claim",
    "Decision",
    "DeliveryInfo",
    "DeliveryStatus",
    "DeliveryUpdate",
    "DeviceInfo",
    "DeviceSpec",
    "DeviceSpecLike",
    "Fence",
    "ItemInfo",
    "ItemKind",
    "ItemState",
    "LiveClusterRecord",
    "LiveRecord",
    "NewItem",
    "PlayRecord",
    "RemapChange",
    "RunRecord",
    "ScheduleRecord",
    "SessionInfo",
    "StatusRecord",
    "StopOrder",
    "Store",
    "UserInfo",
    "VariantInfo",
    "acknowledge_action",
    "member_lease",
    "utc_from_ms",
]
