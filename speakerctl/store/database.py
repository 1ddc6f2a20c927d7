"""`Store`: the controller's database, one engine migrated at open, and a repository per kind of record."""

from __future__ import annotations

from types import TracebackType

from sqlalchemy import Engine

from speakerctl.errors import StoreError
from speakerctl.store.accounts import SessionRepository, UserRepository
from speakerctl.store.approvals import ApprovalRepository, PolicyRepository
from speakerctl.store.broadcasts import BroadcastRepository, DeliveryRepository
from speakerctl.store.cap import CapRepository
from speakerctl.store.coordination import LeaseRepository
from speakerctl.store.engine import Sessions
from speakerctl.store.events import EventReader
from speakerctl.store.fleet import DeviceRepository, StatusRepository, ZoneRepository
from speakerctl.store.library import BulletinRepository
from speakerctl.store.live import LiveRepository
from speakerctl.store.migrate import upgrade
from speakerctl.store.monitoring import AlertRepository, AuditLog, PlayLog
from speakerctl.store.outbox import OutboxRepository
from speakerctl.store.remap import RemapRepository
from speakerctl.store.schedules import ScheduleRepository
from speakerctl.store.tokens import TokenRepository


class Store:
    """Thread-safe: every repository shares one engine and runs each call in its own transaction."""

    def __init__(self, url: str, *, history_limit: int = 100, prune_every: int = 10) -> None:
        if history_limit < 1 or prune_every < 1:
            raise StoreError("history_limit and prune_every must be at least 1")
        self._sessions = Sessions(url)
        self.zones = ZoneRepository(self._sessions)
        self.devices = DeviceRepository(self._sessions)
        self.statuses = StatusRepository(self._sessions, history_limit=history_limit, prune_every=prune_every)
        self.bulletins = BulletinRepository(self._sessions)
        self.broadcasts = BroadcastRepository(self._sessions)
        self.deliveries = DeliveryRepository(self._sessions)
        self.alerts = AlertRepository(self._sessions)
        self.audit = AuditLog(self._sessions)
        self.plays = PlayLog(self._sessions)
        self.schedules = ScheduleRepository(self._sessions)
        self.remaps = RemapRepository(self._sessions)
        self.users = UserRepository(self._sessions)
        self.sessions = SessionRepository(self._sessions)
        self.approvals = ApprovalRepository(self._sessions)
        self.policies = PolicyRepository(self._sessions)
        self.live = LiveRepository(self._sessions)
        self.outbox = OutboxRepository(self._sessions)
        self.events = EventReader(self._sessions)
        self.cap = CapRepository(self._sessions)
        self.tokens = TokenRepository(self._sessions)
        self.leases = LeaseRepository(self._sessions)

    @classmethod
    def open(cls, url: str, *, history_limit: int = 100, prune_every: int = 10) -> Store:
        """Connect and bring the schema up to date (Alembic, see store/migrate.py)."""
        store = cls(url, history_limit=history_limit, prune_every=prune_every)
        try:
            upgrade(store._sessions)
        except BaseException:
            store.close()
            raise
        return store

    @property
    def engine(self) -> Engine:
        """The engine, for APScheduler's SQLAlchemyJobStore (table `JOBS_TABLE`) in the same schema."""
        return self._sessions.engine

    @property
    def shared(self) -> bool:
        """Whether several controllers may share this database (PostgreSQL); SQLite serves one."""
        return self._sessions.engine.dialect.name == "postgresql"

    @property
    def where(self) -> str:
        """The database URL without its password, for logs and the operator."""
        return self._sessions.where

    def close(self) -> None:
        """Close every pooled connection."""
        self._sessions.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
