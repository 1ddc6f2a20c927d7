"""The JSON of live streams (`live list`, `live show`): one serialiser per record, for the CLI and the web."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from speakerctl.app.views import Timestamp, View, priority_name
from speakerctl.store import LiveClusterRecord, LiveRecord


class LiveClusterView(View):
    """One cluster's part in a live stream."""

    device: str
    skipped: str
    started_at: Timestamp | None
    ended_at: Timestamp | None
    reason: str
    played: int
    lost: int
    underruns: int
    forged: int


class LiveStreamView(View):
    """A live stream: its source, who started it, how it ended, and how the clusters fared."""

    stream: str
    source: str
    actor: str
    targets: list[str]
    priority: str
    started_at: Timestamp
    ended_at: Timestamp | None
    end_reason: str
    frames: int
    clusters_played: int
    clusters_skipped: int
    underruns: int


class LiveStreamDetailView(LiveStreamView):
    """A live stream with every targeted cluster."""

    clusters: list[LiveClusterView]


def cluster_view(c: LiveClusterRecord) -> LiveClusterView:
    """The view of one cluster's record."""
    return LiveClusterView(
        device=c.device_id,
        skipped=c.skipped,
        started_at=c.started_at,
        ended_at=c.ended_at,
        reason=c.reason,
        played=c.played,
        lost=c.lost,
        underruns=c.underruns,
        forged=c.forged,
    )


def stream_view(record: LiveRecord, clusters: Sequence[LiveClusterRecord]) -> LiveStreamView:
    """The summary view of a stream."""
    return LiveStreamView(**_summary(record, clusters))


def stream_detail(record: LiveRecord, clusters: Sequence[LiveClusterRecord]) -> LiveStreamDetailView:
    """The full view of a stream, cluster by cluster."""
    return LiveStreamDetailView(**_summary(record, clusters), clusters=[cluster_view(c) for c in clusters])


def _summary(record: LiveRecord, clusters: Sequence[LiveClusterRecord]) -> dict[str, Any]:
    return {
        "stream": record.id,
        "source": record.source,
        "actor": record.actor,
        "targets": list(record.targets),
        "priority": priority_name(record.priority),
        "started_at": record.started_at,
        "ended_at": record.ended_at,
        "end_reason": record.end_reason,
        "frames": record.frames,
        "clusters_played": sum(c.played > 0 for c in clusters),
        "clusters_skipped": sum(bool(c.skipped) for c in clusters),
        "underruns": sum(c.underruns for c in clusters),
    }
