"""One serialiser per record: the JSON every `--json` prints and every `/api/...` answers.

Each view is a pydantic model built from the store's (or the controller's) dataclasses by one
function in `speakerctl.app.records`; `dump()` gives the JSON-ready dict. Field names are the public
API (pinned by tests/test_views.py): a record's own id is `id`, a reference to another record is that
record's noun (`device`, `zone`, `bulletin`, `broadcast`, `schedule`), and every timestamp is ISO 8601
with its offset. `link_type` is how the inventory says a cluster is connected; `uplink` is the network
it reported.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, PlainSerializer, WithJsonSchema

from speakerctl.protocol import Priority


def _iso(at: datetime) -> str:
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).isoformat()


Timestamp = Annotated[
    datetime,
    PlainSerializer(_iso, return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time"}, mode="serialization"),
]
"""A moment, written as ISO 8601 with its offset ("2026-11-29T06:00:00+07:00")."""


class View(BaseModel):
    """A frozen, JSON-ready record."""

    model_config = ConfigDict(frozen=True, use_attribute_docstrings=True)

    def dump(self) -> dict[str, Any]:
        """The JSON-ready dict."""
        return self.model_dump(mode="json")


def dump_all(views: Iterable[View]) -> list[dict[str, Any]]:
    """A list of records, JSON-ready."""
    return [v.dump() for v in views]


def priority_name(level: int) -> str:
    """A priority level as its wire name ("normal", "priority", "emergency")."""
    return Priority(level).wire


class ZoneView(View):
    """A zone of the tree and how many clusters sit directly in it."""

    id: str
    name: str
    kind: str
    parent: str | None
    devices: int


class DeviceView(View):
    """A cluster: inventory record and latest reported status."""

    id: str
    name: str
    zone: str
    model: str
    link_type: str
    lat: float | None
    lon: float | None
    online: bool
    last_seen: Timestamp | None
    firmware: str | None
    volume: int | None
    playing: str | None
    amplifier: str | None
    power: str | None
    battery_pct: int | None
    uplink: str | None
    rssi_dbm: int | None
    temperature_c: float | None
    storage_free_mb: int | None
    clock_offset_ms: int | None
    cached_count: int | None
    uptime_s: int | None


class DeviceHealthView(DeviceView):
    """A cluster with its effective online state, fault flag and open alert kinds."""

    fault: bool
    open_alerts: list[str]


class StatusView(View):
    """One status a cluster reported."""

    received_at: Timestamp
    online: bool
    volume: int | None
    playing: str | None
    amplifier: str | None
    power: str | None
    battery_pct: int | None
    uplink: str | None
    rssi_dbm: int | None
    temperature_c: float | None
    clock_offset_ms: int | None


class AlertView(View):
    """An alert a health rule opened (and maybe closed)."""

    id: int
    kind: str
    device: str
    opened_at: Timestamp
    closed_at: Timestamp | None
    detail: str


class ActionView(View):
    """A remote action taken on a cluster (the audit log)."""

    at: Timestamp
    actor: str
    device: str
    action: str
    outcome: str
    detail: str


class DeviceDetailView(DeviceView):
    """`devices show`: a cluster, where it is, and what happened to it lately."""

    zone_path: str
    history: list[StatusView]
    alerts: list[AlertView]
    actions: list[ActionView]


class LocationView(View):
    """Where a cluster stands."""

    device: str
    name: str
    zone_path: str
    lat: float | None
    lon: float | None
    map: str | None


class RemoteResultView(View):
    """A remote action's outcome: acknowledged or refused, and the round trip."""

    device: str
    action: str
    ok: bool
    detail: str
    rtt_ms: float
    clock_offset_ms: int


class ZoneSummaryView(View):
    """Counts over a zone and everything below it, and how far the last broadcast got there."""

    id: str
    name: str
    kind: str
    depth: int
    total: int
    online: int
    offline: int
    fault: int
    last_targeted: int
    last_reached: int
    last_played: int


class BroadcastReachView(View):
    """A recent broadcast and how far it got."""

    id: str
    state: str
    created_at: Timestamp
    targets: list[str]
    targeted: int
    reached: int
    played: int


class FleetView(View):
    """The fleet at a glance: `fleet status --json` and `/api/fleet`."""

    at: Timestamp
    totals: dict[str, int]
    zones: list[ZoneSummaryView]
    devices: list[DeviceHealthView]
    alerts: list[AlertView]
    broadcasts: list[BroadcastReachView]
    last_broadcast: BroadcastReachView | None


class BroadcastResultView(View):
    """What a broadcast (or a resumed one) reached when the controller stopped following it."""

    broadcast: str
    total: int
    played: int
    complete: bool
    counts: dict[str, int]
    reach_latency_s: float | None
    stopped_by: str | None = None
    """Who stopped the whole broadcast (None: nobody did)."""


class ZoneOutcomeView(View):
    """How one broadcast went in one zone."""

    zone: str
    name: str
    targeted: int
    reached: int
    played: int
    failed: int
    missed: int
    reasons: dict[str, int]


class MissedView(View):
    """A cluster that did not play a broadcast, and why."""

    device: str
    state: str
    reason: str | None
    detail: str | None


class BroadcastReportView(View):
    """`report BROADCAST --json`."""

    broadcast: str
    bulletin: int
    state: str
    priority: str
    targets: list[str]
    counts: dict[str, int]
    zones: list[ZoneOutcomeView]
    not_played: list[MissedView]
    started_by: str
    approved_by: str
    stopped_by: str
    cap: str = ""
    """The identifier of the CAP alert it aired ("" if none)."""


class StopView(View):
    """A stop of one broadcast: where it was sent, how many clusters it stopped and how many confirmed."""

    broadcast: str
    zones: list[str]
    """The zones the stop was sent to; [] when it went everywhere the broadcast went."""
    whole: bool
    """Whether the broadcast as a whole is stopped (else it keeps playing outside `zones`)."""
    state: str
    clusters: int
    """Clusters whose delivery was still open, now recorded `stopped`."""
    confirmed: int
    """Clusters that reported the stop."""
    ended_otherwise: int
    """Clusters that answered with another end (it had just finished, or failed, as the stop came)."""
    unconfirmed: list[str]
    """Clusters that did not answer in time: recorded `stopped`, with a detail saying so."""
    stopped_by: str
    stopped_at: Timestamp


class PlayView(View):
    """One cluster's airing of one broadcast (the play log)."""

    date: str
    district: str
    commune: str
    device: str
    device_name: str
    bulletin: str
    priority: str
    broadcast: str
    started_at: Timestamp
    ended_at: Timestamp | None
    aired_s: float | None
    outcome: str
    cap: str = ""
    """The identifier of the CAP alert it aired ("" if none)."""


class BulletinView(View):
    """A bulletin in the library."""

    id: int
    title: str
    duration_s: float
    codec: str
    size: int
    sha256: str
    source: str
    created_at: Timestamp
    created_by: str
    loudness_lufs: float | None
    true_peak_dbtp: float | None
    profile: str


class ImportedView(BulletinView):
    """A bulletin just added, or found already in the library."""

    created: bool


class VariantView(View):
    """One encoding of a bulletin."""

    codec: str
    bitrate_kbps: int
    size: int
    sha256: str


class TargetView(View):
    """A broadcast target with its name."""

    id: str
    name: str


class AiringView(View):
    """One broadcast of a bulletin and how it went."""

    broadcast: str
    at: Timestamp
    state: str
    priority: str
    targets: list[TargetView]
    clusters: int
    played: int
    first_playing_at: Timestamp | None
    last_finished_at: Timestamp | None


class BulletinDetailView(BulletinView):
    """`bulletin show`: a bulletin, its encodings and its airings."""

    variants: list[VariantView]
    airings: list[AiringView]


class ExportedView(View):
    """A bulletin written to a file."""

    id: int
    path: str
    size: int


class RemovedView(View):
    """A bulletin removed from the library."""

    id: int
    title: str
    removed: bool


class ScheduleView(View):
    """A schedule and its next air time."""

    id: str
    name: str
    bulletin: int
    relay: str | None
    """A relay schedule's station URL (its bulletin is 0)."""
    targets: list[str]
    rule: str
    priority: str
    on_preempt: str
    window_s: int
    paused: bool
    next_at: Timestamp | None


class OverlapView(View):
    """An existing schedule a new one overlaps, and which of the two wins."""

    existing: str
    at: Timestamp
    winner: str
    why: str


class AddedScheduleView(ScheduleView):
    """A schedule just added, with what it overlaps."""

    overlaps: list[OverlapView]


class RunView(View):
    """One occurrence of a schedule and what became of it."""

    fire_at: Timestamp
    state: str
    broadcast: str
    detail: str


class ScheduleDetailView(ScheduleView):
    """`schedule show`: a schedule, its next air times, its recent runs."""

    upcoming: list[Timestamp]
    runs: list[RunView]


class SegmentView(View):
    """A stretch of air time on one target, after priority resolution."""

    start: Timestamp
    end: Timestamp
    target: str
    schedule: str
    priority: str
    note: str


class KeyView(View):
    """A trusted command-signing key."""

    key_id: str
    active: bool


class AccountView(View):
    """A broker account just issued (its secret is shown once)."""

    username: str
    secret: str


class ProvisionedView(View):
    """`devices provision --json`."""

    trusted_keys: str
    key_id: str
    accounts: list[AccountView]


class BundleView(View):
    """One cluster's provisioning bundle just written (its secret is in the bundle, not here)."""

    device_id: str
    directory: str
    brokers: list[str]
    tls_ca: bool


class BundlesView(View):
    """`devices provision --bundle DIR --json`."""

    key_id: str
    bundles: list[BundleView]


class RemapZoneView(View):
    """A zone of a remap's new tree: whether the remap adds it, and the clusters that move into it."""

    zone: str
    name: str
    kind: str
    added: bool
    clusters: int
    from_zones: list[str]


class RemapScheduleView(View):
    """A schedule whose targets a remap rewrites."""

    schedule: str
    name: str
    before: list[str]
    after: list[str]


class RemapKeptView(View):
    """Clusters a remap leaves where they are, because the sources do not settle their new zone."""

    zone: str
    clusters: int
    reason: str


class ConfigureView(View):
    """What became of one cluster's `configure` command."""

    device: str
    outcome: str
    detail: str


class RemapView(View):
    """A remap, planned (dry run) or applied: zones added, retired, clusters moved, schedules retargeted."""

    mapping: str
    applied: bool
    moved: int
    added: list[str]
    retired: list[str]
    zones: list[RemapZoneView]
    schedules: list[RemapScheduleView]
    kept: list[RemapKeptView]
    configure: list[ConfigureView]
    acknowledged: int
    needs_reprovisioning: int


class UserView(View):
    """A user account (never its password hash)."""

    name: str
    display_name: str
    role: str
    zone: str | None
    """None: the whole installation."""
    disabled: bool
    created_at: Timestamp


class WhoamiView(View):
    """Who a command acts as."""

    user: str
    role: str
    zone: str | None
    signed_in: bool
    """False: the local administrator of the data directory (no session)."""


class ItemView(View):
    """An approval item (Circular 39): a broadcast or schedule waiting for (or past) a decision."""

    id: int
    kind: str
    """broadcast or schedule."""
    bulletin: int
    zone: str
    """The zone whose approvers decide."""
    targets: list[str]
    priority: str
    from_above: bool
    """Sent by a higher level: the zone places it in its own programme."""
    submitted_by: str
    submitted_at: Timestamp
    at: Timestamp | None
    """When its author would like it aired (None: when approved)."""
    state: str
    """pending, approved, rejected, or aired (an emergency from above)."""
    decided_by: str
    decided_at: Timestamp | None
    reason: str
    result: str
    """The broadcast or schedule the approval made."""


class ApprovedView(View):
    """An approved item and what it made: a broadcast (aired now) or a schedule."""

    item: ItemView
    broadcast: BroadcastResultView | None
    schedule: str | None
    forwarded: list[int]
    """Items it made for the zones below (an item approved in a province goes on to its communes)."""


class PolicyView(View):
    """Which roles wait for approval in a zone, and the zone whose policy says so."""

    zone: str
    approval_for: list[str]
    set_on: str | None
    """None: nobody set one above it; the default holds (operators wait)."""


class CapAlertView(View):
    """A CAP 1.2 message received and what became of it (`state`, see app/cap.py)."""

    id: int
    identifier: str
    sender: str
    sent: datetime
    status: str
    msg_type: str
    received_at: datetime
    source: str
    event: str
    headline: str
    language: str
    priority: str
    risk_level: int | None
    targets: list[str]
    expires: datetime | None
    state: str
    detail: str
    bulletin: int | None
    next_air_at: datetime | None
    broadcasts: list[str]
    duplicate: bool


class TokenView(View):
    """An API token of a user (never the token itself: only its first characters)."""

    id: int
    user: str
    label: str
    prefix: str
    """The token's first characters, to tell tokens apart."""
    created_at: Timestamp
    last_used_at: Timestamp | None


class NewTokenView(TokenView):
    """A token just created: `token` is shown this once and never stored."""

    token: str


class AcceptedView(View):
    """A broadcast request the API accepted: on air now (`broadcast`), or waiting for approval (`items`)."""

    broadcast: str | None
    """The broadcast started (followed in the background; see its report); None if it waits."""
    items: list[int]
    """The approval items it waits in ([] when it airs now)."""
    message: str
