"""The public feed of what aired in a zone, for citizens' apps: public fields only, newest first.

A bulletin's airing is one broadcast that started playing on at least one cluster of the zone (or below
it); who made the bulletin is named only when the installation says so (`public_feed.show_authors`).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from speakerctl.app.integration_views import AiredFeedView, AiredItemView
from speakerctl.app.views import priority_name
from speakerctl.config import PublicFeedSettings
from speakerctl.store import PlayRecord, Store

WINDOW = timedelta(days=30)
"""How far back the feed looks."""


def aired(store: Store, feed: PublicFeedSettings, zone_id: str, now: datetime) -> AiredFeedView:
    """What aired in the zone in the last 30 days, newest first; NotFound for an unknown zone."""
    zone = store.zones.get(zone_id)
    devices = store.devices.ids_in([zone_id])
    plays = store.plays.between(now - WINDOW, now + timedelta(minutes=1), devices) if devices else []
    by_broadcast: dict[str, list[PlayRecord]] = defaultdict(list)
    for play in plays:
        by_broadcast[play.broadcast_id].append(play)
    newest = sorted(by_broadcast.values(), key=lambda ps: min(p.playing_at for p in ps), reverse=True)
    items = [_item(store, feed, ps) for ps in newest[: feed.items]]
    return AiredFeedView(zone=zone.id, name=zone.name, updated_at=now, items=items)


def _item(store: Store, feed: PublicFeedSettings, plays: list[PlayRecord]) -> AiredItemView:
    first = plays[0]
    ended = [p.ended_at for p in plays if p.ended_at is not None]
    return AiredItemView(
        id=first.broadcast_id,
        title=first.bulletin_title,
        priority=priority_name(first.priority),
        started_at=min(p.playing_at for p in plays),
        ended_at=max(ended) if len(ended) == len(plays) else None,
        duration_s=round(first.duration_ms / 1000, 1),
        clusters=len({p.device_id for p in plays}),
        author=_author(store, first.broadcast_id) if feed.show_authors else None,
    )


def _author(store: Store, broadcast_id: str) -> str:
    """Who made the bulletin the broadcast aired."""
    return store.bulletins.get(store.broadcasts.get(broadcast_id).bulletin_id).created_by
