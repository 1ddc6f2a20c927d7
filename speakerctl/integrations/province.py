"""The connector to a province's source information system (guidance 1273/BTTTT-TTCS, 2455/BTTTT-TTCS).

It logs in for a token (again on a 401), uploads each cluster's status and a record per airing through
the outbox (so an unreachable province loses nothing), and polls the province's inbox for bulletins and
schedules pushed to the commune, handing each to the `Inbox` port (the approval queue and the schedule
book, in `app.province`) and acknowledging it, also through the outbox. Field names come from the
province's mapping profile.
"""

from __future__ import annotations

import asyncio
import json
import logging
import tempfile
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urljoin, urlsplit

from speakerctl.clock import Clock
from speakerctl.config import ProvinceSettings
from speakerctl.errors import LoginRefused, RemoteError, RemoteRefused, SpeakerctlError
from speakerctl.i18n import _
from speakerctl.integrations.http import Answer, HttpClient, checked
from speakerctl.integrations.mapping import Profile
from speakerctl.integrations.outbox import Dispatcher, Pass
from speakerctl.retry import Backoff
from speakerctl.store import AiredRecord, DeviceInfo, NewOutboxItem, OutboxItem, Store

log = logging.getLogger(__name__)
IDEMPOTENCY_HEADER = "Idempotency-Key"
REREAD = timedelta(hours=1)
"""Airings are read again this far behind the newest one sent: a cluster may report an end late."""
PRUNE_EVERY_S = 3600.0
KINDS = {"status": "status", "airing": "airing", "ack": "ack"}
"""Outbox kinds and the profile's endpoint each is posted to."""


@dataclass(frozen=True, slots=True)
class PushedItem:
    """A bulletin or schedule the province pushed to the commune, in speakerctl's terms."""

    id: str
    type: str
    """"bulletin" (to the approval queue) or "schedule" (to the schedule book)."""
    title: str
    content_url: str
    priority: int = 1
    zone_id: str = ""
    at: str = ""
    daily: str = ""
    days: str = ""
    valid_from: str = ""
    valid_until: str = ""


class Inbox(Protocol):
    """Where pushed items go: the commune's approval queue and schedule book."""

    async def take(self, item: PushedItem, audio: Path) -> str:
        """Queue the item (its audio downloaded to `audio`); a line saying what it became."""
        ...


@dataclass(frozen=True, slots=True)
class SyncResult:
    """What one synchronisation did."""

    statuses: int
    airings: int
    pushed: int
    delivered: int
    failed: int
    held_until: datetime | None


class ProvinceConnector:
    """One province: login, uploads through the outbox, the pushed inbox."""

    def __init__(
        self,
        store: Store,
        settings: ProvinceSettings,
        profile: Profile,
        clock: Clock,
        http: HttpClient,
        inbox: Inbox,
    ) -> None:
        self.store, self.settings, self.profile, self.clock = store, settings, profile, clock
        self.http, self.inbox = http, inbox
        self.channel = f"province:{settings.name}"
        backoff = Backoff(None, settings.retry_first_s, settings.retry_max_s, settings.retry_first_s)
        self.dispatcher = Dispatcher(store, self.channel, self._send, clock, backoff)
        self._token: str | None = None

    def url(self, path: str) -> str:
        """An endpoint's absolute URL (a path joined to the base URL; an absolute URL as it is)."""
        return (
            urljoin(self.settings.base_url.rstrip("/") + "/", path.lstrip("/")) if "://" not in path else path
        )

    async def login(self) -> str:
        """A fresh token; LoginRefused (one line, with a hint) if the province refuses the credentials."""
        names = self.profile.tables["login"]
        body = {names["username"]: self.settings.username, names["password"]: self.settings.login_password()}
        url = self.url(self.profile.endpoint("login"))
        answer = await self.http.request("POST", url, body=_json(body), headers=_JSON)
        if answer.status in (400, 401, 403):
            raise LoginRefused(
                _("province {name} refused the login of {user!r} (HTTP {status})").format(
                    name=self.settings.name, user=self.settings.username, status=answer.status
                ),
                hint=_("check username and password (or password_file) of [[province]] {name}").format(
                    name=self.settings.name
                ),
            )
        self._token = _token(checked(answer, url).json(), names["token"], url)
        return self._token

    async def call(self, method: str, path: str, body: bytes | None = None, key: str = "") -> Answer:
        """An authorised request; on a 401 (token expired) log in again once and repeat it."""
        url = self.url(path)
        for fresh in (False, True):
            token = self._token if self._token and not fresh else await self.login()
            scheme = self.profile.tables["login"].get("scheme", "Bearer")
            headers = {"Authorization": f"{scheme} {token}".strip(), **_JSON}
            if key:
                headers[IDEMPOTENCY_HEADER] = key
            answer = await self.http.request(method, url, body=body, headers=headers)
            if answer.status != 401:
                return checked(answer, url)
            self._token = None
        raise LoginRefused(_("province {name} refused a fresh token").format(name=self.settings.name))

    async def _send(self, item: OutboxItem) -> None:
        path = self.profile.endpoint(KINDS[item.kind], id=item.subject)
        await self.call("POST", path, _json(item.payload), item.idempotency_key)

    async def collect_status(self) -> int:
        """Enqueue each cluster's latest status (an older one not yet sent is replaced)."""
        devices = await asyncio.to_thread(self.store.devices.all, [self.settings.zone])
        now = self.clock.now()
        items = [self._status_item(d, now) for d in devices]
        return await asyncio.to_thread(self.store.outbox.enqueue, items, now, latest_only=True)

    def _status_item(self, device: DeviceInfo, now: datetime) -> NewOutboxItem:
        at = device.status_ts or device.last_seen or now
        fields = {
            "cluster_id": device.id,
            "volume": device.volume,
            "play_state": "playing" if device.playing else "idle",
            "connection": "online" if device.online else "offline",
            "latitude": device.lat,
            "longitude": device.lon,
            "reported_at": at.isoformat(),
            "content_url": device.playing or "",
            "app_version": device.firmware or "",
            "zone_id": device.zone_id,
        }
        body = self.profile.outgoing("status", fields)
        key = f"status:{device.id}:{at.isoformat()}"
        return NewOutboxItem(self.channel, "status", key, body, at, subject=device.id)

    async def collect_airings(self) -> int:
        """Enqueue a record per airing ended since the last one enqueued (each once, by its key)."""
        latest = await asyncio.to_thread(self.store.outbox.latest_event, self.channel, "airing")
        now = self.clock.now()
        since = latest - REREAD if latest else now - timedelta(hours=self.settings.backfill_h)
        ours = set(await asyncio.to_thread(self.store.devices.ids_in, [self.settings.zone]))
        found = await asyncio.to_thread(self.store.events.airings_since, since, ours)
        items = [self._airing_item(a) for a in found]
        return await asyncio.to_thread(self.store.outbox.enqueue, items, now)

    def _airing_item(self, airing: AiredRecord) -> NewOutboxItem:
        fields = {
            "cluster_id": airing.device_id,
            "bulletin_id": airing.bulletin_id if airing.bulletin_id is not None else airing.airing_id,
            "type": airing.kind,
            "priority": airing.priority,
            "title": airing.title,
            "duration_s": round(airing.duration_ms / 1000, 1),
            "author": airing.author,
            "started_at": airing.started_at.isoformat(),
            "ended_at": airing.ended_at.isoformat(),
            "result": airing.state,
            "relay": airing.relay,
            "relay_source": airing.relay_source if airing.relay else "",
        }
        key = f"airing:{airing.airing_id}:{airing.device_id}"
        body = self.profile.outgoing("airing", fields)
        return NewOutboxItem(self.channel, "airing", key, body, airing.ended_at, subject=airing.device_id)

    async def poll_inbox(self) -> int:
        """Fetch what the province pushed; queue each new item and enqueue its acknowledgement."""
        answer = await self.call("GET", self.profile.endpoint("inbox"))
        raw = _items(answer.json(), self.profile.name_of("inbox", "items"))
        pushed = [p for p in (self._pushed(r) for r in raw) if p is not None]
        done = await asyncio.to_thread(self.store.outbox.known, self.channel, [f"ack:{p.id}" for p in pushed])
        taken = 0
        for item in pushed:
            if f"ack:{item.id}" not in done:
                await self._take(item)
                taken += 1
        return taken

    def _pushed(self, raw: Any) -> PushedItem | None:
        if not isinstance(raw, Mapping):
            log.warning("province %s pushed an item that is not an object: %.200r", self.settings.name, raw)
            return None
        fields = self.profile.incoming("inbox", raw)
        known = {
            k: str(v) for k, v in fields.items() if k in PushedItem.__dataclass_fields__ and v is not None
        }
        try:
            priority = int(known.pop("priority", "1"))
            return PushedItem(**{"title": "", **known}, priority=priority)
        except (TypeError, ValueError) as exc:
            log.warning("province %s pushed an unreadable item %.200r: %s", self.settings.name, raw, exc)
            return None

    async def _take(self, item: PushedItem) -> None:
        """Download the item's audio, hand it to the inbox, and acknowledge how that went."""
        with tempfile.TemporaryDirectory(prefix="speakerctl-push-") as scratch:
            audio = Path(scratch) / "pushed-audio"
            try:
                audio.write_bytes(await self._download(item.content_url))
                outcome = {"id": item.id, "status": "queued", "detail": await self.inbox.take(item, audio)}
            except RemoteError as exc:
                if not isinstance(exc, RemoteRefused):
                    raise  # the province is unreachable: the item is fetched again at the next poll
                outcome = {"id": item.id, "status": "rejected", "detail": str(exc)}
            except SpeakerctlError as exc:
                outcome = {"id": item.id, "status": "rejected", "detail": str(exc)}
        log.warning("province %s pushed %s %s: %s", self.settings.name, item.type, item.id, outcome["detail"])
        ack = NewOutboxItem(self.channel, "ack", f"ack:{item.id}", outcome, self.clock.now(), subject=item.id)
        await asyncio.to_thread(self.store.outbox.enqueue, [ack], self.clock.now())

    async def _download(self, url: str) -> bytes:
        """A pushed item's audio; the token goes only to the province's own address, never elsewhere."""
        absolute = self.url(url)
        if _origin(absolute) == _origin(self.url("/")):
            return (await self.call("GET", absolute)).body
        return checked(await self.http.request("GET", absolute), absolute).body

    async def deliver(self) -> Pass:
        """Send what is due in this province's outbox."""
        return await self.dispatcher.deliver_due()

    async def sync_once(self) -> SyncResult:
        """Log in, collect, poll the inbox and deliver: one full round (`province sync --once`)."""
        if self._token is None:
            await self.login()
        statuses = await self.collect_status()
        airings = await self.collect_airings()
        pushed = await self.poll_inbox()
        done = await self.deliver()
        return SyncResult(statuses, airings, pushed, done.delivered, done.failed, done.held_until)

    async def run(self, tick_s: float) -> None:
        """Each duty at its own interval, until cancelled; a failure is logged in one line and retried."""
        duties: list[tuple[float, Callable[[], Awaitable[object]]]] = [
            (self.settings.status_interval_s, self.collect_status),
            (self.settings.airings_interval_s, self.collect_airings),
            (self.settings.inbox_interval_s, self.poll_inbox),
            (tick_s, self.deliver),
            (PRUNE_EVERY_S, self.dispatcher.prune),
        ]
        due = [0.0] * len(duties)
        while True:
            for i, (every, duty) in enumerate(duties):
                if self.clock.monotonic() >= due[i]:
                    due[i] = self.clock.monotonic() + every
                    await self._logged(duty)
            await asyncio.sleep(tick_s)

    async def _logged(self, duty: Callable[[], Awaitable[object]]) -> None:
        try:
            await duty()
        except LoginRefused as exc:
            log.error("%s", exc)
        except SpeakerctlError as exc:
            log.warning("province %s: %s", self.settings.name, exc)
        except Exception:  # one province's surprise must not take `serve` down; its next round may work
            log.exception("province %s: a round failed", self.settings.name)


_JSON = {"Content-Type": "application/json"}


def _json(body: object) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme, parts.hostname or "", parts.port


def _token(answer: Any, field: str, url: str) -> str:
    """The token in a login answer, at the top or under `data` (as many systems wrap it)."""
    for place in (answer, answer.get("data") if isinstance(answer, dict) else None):
        if isinstance(place, dict) and isinstance(place.get(field), str) and place[field]:
            return str(place[field])
    raise RemoteRefused(_("{url} answered the login without a token {field!r}").format(url=url, field=field))


def _items(answer: Any, field: str) -> list[Any]:
    """The pushed items: a list, or the list under `field`."""
    found = answer.get(field, []) if isinstance(answer, dict) else answer
    return found if isinstance(found, list) else []
