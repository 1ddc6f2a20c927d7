"""The records of the integrations (issue 12): the public feed of what aired, a province's outbox, a sync.

Kept beside `views.py` (which is near its size limit) under the same rules: pydantic, frozen, one
serialiser per record, field names pinned by tests/test_province.py like a public API.
"""

from __future__ import annotations

from speakerctl.app.views import Timestamp, View


class AiredItemView(View):
    """One bulletin that aired in a zone, as citizens' apps see it: public fields only."""

    id: str
    """The broadcast id: stable, and unique per airing."""
    title: str
    priority: str
    started_at: Timestamp
    ended_at: Timestamp | None
    duration_s: float
    clusters: int
    """How many loudspeaker clusters of the zone played it."""
    author: str | None
    """Who made the bulletin; only when the installation publishes it (public_feed.show_authors)."""


class AiredFeedView(View):
    """What aired in a zone, newest first."""

    zone: str
    name: str
    updated_at: Timestamp
    items: list[AiredItemView]


class OutboxChannelView(View):
    """How the delivery to one other system stands."""

    channel: str
    pending: int
    delivered: int
    oldest_pending: Timestamp | None
    last_error: str


class SyncView(View):
    """What one `province sync --once` did."""

    province: str
    statuses: int
    airings: int
    pushed: int
    delivered: int
    failed: int
    held_until: Timestamp | None
    outbox: OutboxChannelView
