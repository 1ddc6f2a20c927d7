"""Alerts: an operator acknowledges an open alert (recorded, with who, in the audit log)."""

from __future__ import annotations

from datetime import datetime

from speakerctl.app.access import Action, Actor, authorize
from speakerctl.errors import NotFound
from speakerctl.fleet import ZoneTree
from speakerctl.i18n import _
from speakerctl.store import AlertInfo, AuditEntry, Store, acknowledge_action


def open_alert(store: Store, alert_id: int) -> AlertInfo:
    """An open alert by id (NotFound if unknown or closed)."""
    for alert in store.alerts.all(open_only=True):
        if alert.id == alert_id:
            return alert
    raise NotFound(_("no open alert {id}").format(id=alert_id), hint=_("it may have closed already"))


def acknowledge(store: Store, actor: Actor, alert_id: int, now: datetime) -> AuditEntry:
    """Acknowledge an open alert on a cluster in the actor's zones; the audit log keeps who and when."""
    alert = open_alert(store, alert_id)
    zone = store.devices.get(alert.device_id).zone_id
    authorize(actor, Action.ACKNOWLEDGE, [zone], ZoneTree(store.zones.all()))
    done = store.audit.acknowledged([alert_id])
    if alert_id in done:
        return next(
            e for e in store.audit.entries(alert.device_id) if e.action == acknowledge_action(alert_id)
        )
    return store.audit.record(
        actor.name, alert.device_id, acknowledge_action(alert_id), "ok", alert.kind, now
    )


def acknowledged(store: Store, alerts: list[AlertInfo]) -> dict[int, str]:
    """Who acknowledged each of these alerts."""
    return store.audit.acknowledged([a.id for a in alerts])
