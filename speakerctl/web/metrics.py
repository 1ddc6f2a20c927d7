"""Prometheus metrics of the fleet snapshot and the ingestion counters, exposed through prometheus_client."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from prometheus_client import generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from speakerctl.clock import Clock
from speakerctl.controller.fleetview import FleetSnapshot, state_counts
from speakerctl.controller.ingest import IngestCounters


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


@dataclass(frozen=True, slots=True)
class Readings:
    """What one scrape reports."""

    snapshot: FleetSnapshot
    deliveries: dict[str, int]
    counters: IngestCounters
    ingest_rate: float
    reach_latency_s: float | None


class FleetCollector(Collector):
    """Every metric, built from readings taken when Prometheus scrapes."""

    def __init__(self, read: Callable[[], Readings]) -> None:
        self._read = read

    def collect(self) -> Iterator[Metric]:
        """The metric families of the readings now."""
        return families(self._read())


def registry(read: Callable[[], Readings]) -> CollectorRegistry:
    """A registry of its own, never the process-global one, so several servers (and tests) never collide."""
    own = CollectorRegistry()
    own.register(FleetCollector(read))
    return own


def render(
    snapshot: FleetSnapshot,
    deliveries: dict[str, int],
    counters: IngestCounters,
    ingest_rate: float,
    reach_latency_s: float | None,
) -> str:
    """Every metric of these readings, as Prometheus scrapes it."""
    readings = Readings(snapshot, deliveries, counters, ingest_rate, reach_latency_s)
    return generate_latest(registry(lambda: readings)).decode()


def families(r: Readings) -> Iterator[Metric]:
    """The metric families of one set of readings."""
    states = state_counts(r.snapshot)
    by_state = [(s, states[s]) for s in ("online", "offline", "fault")]
    yield _by("speakerctl_devices", "Clusters by state (online: heard within heartbeat_timeout_s).", by_state)
    yield _gauge("speakerctl_devices_total", "Clusters in the inventory.", len(r.snapshot.devices))
    alerts = sorted(Counter(a.kind for a in r.snapshot.alerts).items())
    yield _by("speakerctl_alerts_open", "Open alerts by kind.", alerts, label="kind")
    deliveries = sorted(r.deliveries.items())
    yield _by("speakerctl_deliveries", "Deliveries over every broadcast, by state.", deliveries)
    for name, value, text in _ingested(r.counters):
        # prometheus_client drops a trailing _total from a counter's name and exposes it with one.
        yield CounterMetricFamily(f"speakerctl_ingested_{name}_total", text, value=value)
    yield _gauge("speakerctl_ingest_rate", "Status messages ingested per second, recently.", r.ingest_rate)
    if r.reach_latency_s is not None:
        text = "Seconds from the last broadcast's command until every reached cluster was playing."
        yield _gauge("speakerctl_broadcast_reach_latency_seconds", text, r.reach_latency_s)


def _ingested(c: IngestCounters) -> tuple[tuple[str, int, str], ...]:
    """The ingestion counters exposed, each as `speakerctl_ingested_<name>_total`."""
    return (
        ("statuses", c.statuses, "Status messages ingested."),
        ("events", c.events, "Delivery events ingested."),
        ("malformed", c.malformed, "Messages rejected as malformed."),
        ("set_aside", c.set_aside, "Rows the store refused, set aside so the rest was stored."),
        ("dropped_statuses", c.dropped_statuses, "Statuses dropped from a full backlog."),
        ("merged_statuses", c.merged_statuses, "Statuses of a full backlog folded into a later one."),
        ("merged_events", c.merged_events, "Delivery reports of a full backlog merged per delivery."),
        ("dropped_events", c.dropped_events, "Delivery reports dropped from a backlog full after merging."),
        ("future_timestamps", c.future_timestamps, "Messages stamped ahead of our clock."),
    )


def _gauge(name: str, help_text: str, value: float) -> GaugeMetricFamily:
    """A gauge of one sample."""
    return GaugeMetricFamily(name, help_text, value=value)


def _by(
    name: str, help_text: str, samples: Iterable[tuple[str, float]], label: str = "state"
) -> GaugeMetricFamily:
    """A gauge with one sample per value of `label`."""
    family = GaugeMetricFamily(name, help_text, labels=[label])
    for value, number in samples:
        family.add_metric([value], number)
    return family
