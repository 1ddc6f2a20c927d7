"""Alerts: an operator acknowledges an open alert (recorded, with who, in the audit log)."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from speakerctl.app.access import Action, Actor, authorize
from speakerctl.errors import NotFound
from speakerctl.fleet import ZoneTree
from speakerctl.i18n import _
from speakerctl.store import AlertFinding, AlertInfo, AuditEntry, Store, acknowledge_action

RELAY_SOURCE_AWAY = "relay_source_away"
"""A relayed station stopped sending: its clusters hear the filler (or silence) until it is back."""


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


def relay_source_alerts(store: Store, devices: Collection[str], detail: str, now: datetime) -> None:
    """Open a RELAY_SOURCE_AWAY alert on each of `devices` (with `detail`), or close theirs (`detail`
    empty); other streams' open alerts of the kind stay as they are."""
    mine = set(devices)
    current = [a for a in store.alerts.all(open_only=True) if a.kind == RELAY_SOURCE_AWAY]
    kept = [AlertFinding(a.kind, a.device_id, a.detail) for a in current if a.device_id not in mine]
    opened = [AlertFinding(RELAY_SOURCE_AWAY, d, detail) for d in sorted(mine)] if detail else []
    store.alerts.sync([*kept, *opened], {RELAY_SOURCE_AWAY}, now)
