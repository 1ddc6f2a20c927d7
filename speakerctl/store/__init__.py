"""The controller's database: the only code that imports SQLAlchemy, sqlmodel and Alembic.

Plain dataclasses in and out; `Store` holds one engine and a repository per kind of record.
"""

from speakerctl.store.accounts import SessionInfo, UserInfo
from speakerctl.store.approvals import Decision, ItemInfo, ItemKind, ItemState, NewItem
from speakerctl.store.broadcasts import Airing
from speakerctl.store.cap import CapRecord
from speakerctl.store.coordination import LEADER, Claim, Fence, member_lease
from speakerctl.store.database import Store
from speakerctl.store.events import AiredRecord, FinishedBroadcast
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
from speakerctl.store.outbox import NewOutboxItem, OutboxItem, OutboxSummary
from speakerctl.store.remap import RemapChange
from speakerctl.store.schedules import JOBS_TABLE, RunRecord, ScheduleRecord
from speakerctl.store.tokens import TokenInfo

__all__ = [
    "JOBS_TABLE",
    "LEADER",
    "SCHEMA_REVISION",
    "AiredRecord",
    "Airing",
    "AlertFinding",
    "AlertInfo",
    "AuditEntry",
    "BroadcastInfo",
    "BroadcastState",
    "BulletinInfo",
    "CapRecord",
    "Claim",
    "Decision",
    "DeliveryInfo",
    "DeliveryStatus",
    "DeliveryUpdate",
    "DeviceInfo",
    "DeviceSpec",
    "DeviceSpecLike",
    "Fence",
    "FinishedBroadcast",
    "ItemInfo",
    "ItemKind",
    "ItemState",
    "LiveClusterRecord",
    "LiveRecord",
    "NewItem",
    "NewOutboxItem",
    "OutboxItem",
    "OutboxSummary",
    "PlayRecord",
    "RemapChange",
    "RunRecord",
    "ScheduleRecord",
    "SessionInfo",
    "StatusRecord",
    "StopOrder",
    "Store",
    "TokenInfo",
    "UserInfo",
    "VariantInfo",
    "acknowledge_action",
    "member_lease",
    "utc_from_ms",
]
