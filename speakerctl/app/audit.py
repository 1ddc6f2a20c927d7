"""The one way services write the audit log: who (the acting user), what, on what, when, and how it ended."""

from __future__ import annotations

from datetime import datetime

from speakerctl.app.access import Actor
from speakerctl.store import AuditEntry, Store


def record(
    store: Store,
    actor: Actor | str,
    action: str,
    at: datetime,
    *,
    subject: str = "",
    device_id: str = "",
    outcome: str = "ok",
    detail: str = "",
) -> AuditEntry:
    """Append one action; `subject` names what it acted on when that is not a device ("bulletin 12")."""
    name = actor.name if isinstance(actor, Actor) else actor
    return store.audit.record(name, device_id, action, outcome, detail, at, subject=subject)
