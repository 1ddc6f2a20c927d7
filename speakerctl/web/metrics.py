"""Prometheus text exposition (format 0.0.4) of the fleet snapshot and the ingestion counters."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from speakerctl.clock import Clock
from speakerctl.controller.fleetview import FleetSnapshot, state_counts
from speakerctl.controller.ingest import IngestCounters

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class RateMeter:
    """Events per second between successive readings (at least `min_window_s` apart)."""

    def __init__(self, clock: Clock, min_window_s: float = 5.0) -> None:
        self.clock = clock
        self.min_window_s = min_window_s
        self._last = (clock.monotonic(), 0)
        self.rate = 0.0

    def read(self, count: int) -> float:
        """The rate since the previous reading that was far enough back."""
        now = self.clock.monotonic()
        then, before = self._last
        if now - then >= self.min_window_s:
            self.rate = (count - before) / (now - then)
            self._last = (now, count)
        return self.rate


def _metric(name: str, kind: str, help_text: str, samples: Iterable[tuple[str, float]]) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
    lines += [f"{name}{labels} {value:g}" for labels, value in samples]
    return lines


def render(
    snapshot: FleetSnapshot,
    deliveries: dict[str, int],
    counters: IngestCounters,
    ingest_rate: float,
    reach_latency_s: float | None,
) -> str:
    """Every metric, as Prometheus scrapes it."""
    states = state_counts(snapshot)
    alerts = Counter(a.kind for a in snapshot.alerts)
    lines = _metric(
        "speakerctl_devices",
        "gauge",
        "Clusters by state (online: heard within heartbeat_timeout_s).",
        [(f'{{state="{s}"}}', float(states[s])) for s in ("online", "offline", "fault")],
    )
    lines += _metric(
        "speakerctl_devices_total", "gauge", "Clusters in the inventory.", [("", len(snapshot.devices))]
    )
    lines += _metric(
        "speakerctl_alerts_open",
        "gauge",
        "Open alerts by kind.",
        [(f'{{kind="{k}"}}', n) for k, n in sorted(alerts.items())],
    )
    lines += _metric(
        "speakerctl_deliveries",
        "gauge",
        "Deliveries over every broadcast, by state.",
        [(f'{{state="{s}"}}', n) for s, n in sorted(deliveries.items())],
    )
    for name, value, text in (
        ("statuses", counters.statuses, "Status messages ingested."),
        ("events", counters.events, "Delivery events ingested."),
        ("malformed", counters.malformed, "Messages rejected as malformed."),
        ("set_aside", counters.set_aside, "Rows the store refused, set aside so the rest was stored."),
        ("dropped_statuses", counters.dropped_statuses, "Statuses dropped from a full backlog."),
        ("future_timestamps", counters.future_timestamps, "Messages stamped ahead of our clock."),
    ):
        lines += _metric(f"speakerctl_ingested_{name}_total", "counter", text, [("", value)])
    lines += _metric(
        "speakerctl_ingest_rate",
        "gauge",
        "Status messages ingested per second, recently.",
        [("", ingest_rate)],
    )
    if reach_latency_s is not None:
        lines += _metric(
            "speakerctl_broadcast_reach_latency_seconds",
            "gauge",
            "Seconds from the last broadcast's command until every reached cluster was playing.",
            [("", reach_latency_s)],
        )
    return "\n".join(lines) + "\n"
