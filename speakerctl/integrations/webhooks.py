"""Outbound webhooks: broadcast finished, cluster offline, alert opened and closed, signed, via the outbox.

Events are read from the store's own records (finished broadcasts, alerts) and enqueued once per receiver
by a key naming the event (`broadcast.finished:<id>`), so reading a record twice is harmless and a record
committed while the receiver was down is still sent. Each attempt is a POST of the JSON body with
`Speakerctl-Event`, `Idempotency-Key` and the `Speakerctl-Signature` of `signing.py`.
"""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

from speakerctl.clock import Clock
from speakerctl.config import WebhookSettings
from speakerctl.integrations.http import HttpClient, checked
from speakerctl.integrations.outbox import Dispatcher, Pass
from speakerctl.integrations.signing import HEADER, sign
from speakerctl.retry import Backoff
from speakerctl.store import AlertInfo, FinishedBroadcast, NewOutboxItem, OutboxItem, Store

EVENT_HEADER = "Speakerctl-Event"
REREAD = timedelta(minutes=10)
"""Records are read again this far behind the newest event sent (rows commit slightly out of order)."""
OFFLINE = "offline"
"""The alert kind that is also sent as `cluster.offline`."""


class WebhookSender:
    """One receiver: its events collected into the outbox and delivered, signed."""

    def __init__(self, store: Store, settings: WebhookSettings, clock: Clock, http: HttpClient) -> None:
        self.store, self.settings, self.clock, self.http = store, settings, clock, http
        self.channel = f"webhook:{settings.name}"
        backoff = Backoff(None, settings.retry_first_s, settings.retry_max_s, settings.retry_first_s)
        self.dispatcher = Dispatcher(store, self.channel, self._send, clock, backoff)

    async def collect(self) -> int:
        """Enqueue the events this receiver takes that happened since the last one enqueued."""
        latest = await asyncio.to_thread(self.store.outbox.latest_event, self.channel, "event")
        now = self.clock.now()
        since = latest - REREAD if latest else now - timedelta(hours=self.settings.backfill_h)
        finished = await asyncio.to_thread(self.store.events.finished_broadcasts, since)
        alerts = await asyncio.to_thread(self.store.events.alerts_since, since)
        items = [self._item(*e) for e in [*map(_finished, finished), *_alert_events(alerts, since)]]
        wanted = [i for i in items if i.payload["type"] in self.settings.events]
        return await asyncio.to_thread(self.store.outbox.enqueue, wanted, now)

    def _item(self, event: str, key: str, at: Any, data: dict[str, Any]) -> NewOutboxItem:
        body = {"id": f"{event}:{key}", "type": event, "created_at": at.isoformat(), "data": data}
        return NewOutboxItem(self.channel, "event", f"{event}:{key}", body, at, subject=event)

    async def _send(self, item: OutboxItem) -> None:
        body = json.dumps(item.payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        stamp = int(self.clock.now().timestamp())
        headers = {
            "Content-Type": "application/json",
            EVENT_HEADER: str(item.payload.get("type", "")),
            "Idempotency-Key": item.idempotency_key,
            HEADER: sign([self.settings.signing_secret()], body, stamp),
        }
        checked(
            await self.http.request("POST", self.settings.url, body=body, headers=headers), self.settings.url
        )

    async def deliver(self) -> Pass:
        """Send what is due to this receiver."""
        return await self.dispatcher.deliver_due()


def _finished(b: FinishedBroadcast) -> tuple[str, str, Any, dict[str, Any]]:
    data = {
        "broadcast": b.id,
        "bulletin": b.bulletin_id,
        "title": b.title,
        "priority": b.priority,
        "targets": json.loads(b.targets),
        "state": b.state,
        "created_at": b.created_at.isoformat(),
        "completed_at": b.completed_at.isoformat(),
    }
    return ("broadcast.finished", b.id, b.completed_at, data)


def _alert_events(alerts: list[AlertInfo], since: Any) -> list[tuple[str, str, Any, dict[str, Any]]]:
    events: list[tuple[str, str, Any, dict[str, Any]]] = []
    for a in alerts:
        data = {
            "alert": a.id,
            "kind": a.kind,
            "device": a.device_id,
            "opened_at": a.opened_at.isoformat(),
            "closed_at": a.closed_at.isoformat() if a.closed_at else None,
            "detail": a.detail,
        }
        if a.opened_at >= since:
            events.append(("alert.opened", str(a.id), a.opened_at, data))
            if a.kind == OFFLINE:
                events.append(("cluster.offline", str(a.id), a.opened_at, data))
        if a.closed_at is not None and a.closed_at >= since:
            events.append(("alert.closed", str(a.id), a.closed_at, data))
    return events
