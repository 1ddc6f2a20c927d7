"""The one mapping from each store or controller record to its view (speakerctl.app.views)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from speakerctl.app import views
from speakerctl.controller.fleetview import (
    BroadcastReach,
    DeviceHealth,
    FleetSnapshot,
    ZoneCounts,
    state_counts,
)
from speakerctl.controller.reconfigure import Reconfigured
from speakerctl.controller.reports import ZoneOutcome
from speakerctl.controller.service import BroadcastResult, ManageResult
from speakerctl.fleet import Zone
from speakerctl.scheduler.model import Run, Schedule
from speakerctl.scheduler.plan import Overlap, Segment
from speakerctl.scheduler.rules import zone_info
from speakerctl.store import (
    Airing,
    AlertInfo,
    AuditEntry,
    BulletinInfo,
    DeliveryInfo,
    DeviceInfo,
    ItemInfo,
    StatusRecord,
    VariantInfo,
)


def zone(z: Zone, devices: int) -> views.ZoneView:
    """A zone with the number of clusters directly in it."""
    return views.ZoneView(id=z.id, name=z.name, kind=z.kind, parent=z.parent, devices=devices)


def _device_fields(d: DeviceInfo) -> dict[str, object]:
    return {
        "id": d.id,
        "name": d.name,
        "zone": d.zone_id,
        "model": d.model,
        "link_type": d.network,
        "lat": d.lat,
        "lon": d.lon,
        "online": d.online,
        "last_seen": d.last_seen,
        "firmware": d.firmware,
        "volume": d.volume,
        "playing": d.playing,
        "amplifier": d.amplifier,
        "power": d.power_source,
        "battery_pct": d.battery_pct,
        "uplink": d.link_network,
        "rssi_dbm": d.rssi_dbm,
        "temperature_c": d.temperature_c,
        "storage_free_mb": d.storage_free_mb,
        "clock_offset_ms": d.clock_offset_ms,
        "cached_count": d.cached_count,
        "uptime_s": d.uptime_s,
    }


def device(d: DeviceInfo) -> views.DeviceView:
    """A cluster as the store has it."""
    return views.DeviceView.model_validate(_device_fields(d))


def device_health(h: DeviceHealth) -> views.DeviceHealthView:
    """A cluster with its effective online state (heartbeat timeout applied) and open alerts."""
    fields = _device_fields(h.device) | {"online": h.online, "fault": h.fault, "open_alerts": list(h.alerts)}
    return views.DeviceHealthView.model_validate(fields)


def status(r: StatusRecord) -> views.StatusView:
    """One reported status."""
    s = r.status
    return views.StatusView(
        received_at=r.received_at,
        online=r.online,
        volume=s.volume,
        playing=s.playing,
        amplifier=s.amplifier,
        power=s.power.source,
        battery_pct=s.power.battery_pct,
        uplink=s.link.network,
        rssi_dbm=s.link.rssi_dbm,
        temperature_c=s.temperature_c,
        clock_offset_ms=s.clock_offset_ms,
    )


def alert(a: AlertInfo) -> views.AlertView:
    """An alert."""
    return views.AlertView(
        id=a.id,
        kind=a.kind,
        device=a.device_id,
        opened_at=a.opened_at,
        closed_at=a.closed_at,
        detail=a.detail,
    )


def action(a: AuditEntry) -> views.ActionView:
    """An audit-log entry."""
    return views.ActionView(
        at=a.at, actor=a.actor, device=a.device_id, action=a.action, outcome=a.outcome, detail=a.detail
    )


def device_detail(
    d: DeviceInfo,
    zone_path: str,
    history: list[StatusRecord],
    alerts: list[AlertInfo],
    actions: list[AuditEntry],
) -> views.DeviceDetailView:
    """`devices show`."""
    fields = _device_fields(d) | {
        "zone_path": zone_path,
        "history": [status(r) for r in history],
        "alerts": [alert(a) for a in alerts],
        "actions": [action(a) for a in actions],
    }
    return views.DeviceDetailView.model_validate(fields)


def zone_summary(z: ZoneCounts) -> views.ZoneSummaryView:
    """Counts over a zone and below."""
    return views.ZoneSummaryView(
        id=z.zone_id,
        name=z.name,
        kind=z.kind,
        depth=z.depth,
        total=z.total,
        online=z.online,
        offline=z.offline,
        fault=z.fault,
        last_targeted=z.last_targeted,
        last_reached=z.last_reached,
        last_played=z.last_played,
    )


def reach(b: BroadcastReach) -> views.BroadcastReachView:
    """A recent broadcast's reach."""
    return views.BroadcastReachView(
        id=b.broadcast.id,
        state=b.broadcast.state.value,
        created_at=b.broadcast.created_at,
        targets=list(b.broadcast.targets),
        targeted=b.targeted,
        reached=b.reached,
        played=b.played,
    )


def fleet(snapshot: FleetSnapshot) -> views.FleetView:
    """The fleet at a glance."""
    broadcasts = [reach(b) for b in snapshot.broadcasts]
    return views.FleetView(
        at=snapshot.at,
        totals=dict(state_counts(snapshot)),
        zones=[zone_summary(z) for z in snapshot.zones],
        devices=[device_health(h) for h in snapshot.devices],
        alerts=[alert(a) for a in snapshot.alerts],
        broadcasts=broadcasts,
        last_broadcast=broadcasts[0] if broadcasts else None,
    )


def remote_result(r: ManageResult, what: str) -> views.RemoteResultView:
    """A remote action's outcome."""
    return views.RemoteResultView(
        device=r.device_id,
        action=what,
        ok=r.ok,
        detail=r.detail,
        rtt_ms=round(r.rtt_ms, 1),
        clock_offset_ms=round(r.clock_offset_ms),
    )


def broadcast_result(r: BroadcastResult, stopped_by: str | None = None) -> views.BroadcastResultView:
    """What a broadcast reached, and who stopped it (if anyone stopped it as a whole)."""
    return views.BroadcastResultView(
        broadcast=r.broadcast_id,
        total=r.total,
        played=r.played,
        complete=r.complete,
        counts=r.counts,
        reach_latency_s=r.reach_latency_s,
        stopped_by=stopped_by,
    )


def zone_outcome(o: ZoneOutcome) -> views.ZoneOutcomeView:
    """A broadcast's outcome in one zone."""
    return views.ZoneOutcomeView(
        zone=o.zone_id,
        name=o.name,
        targeted=o.targeted,
        reached=o.reached,
        played=o.played,
        failed=o.failed,
        missed=o.missed,
        reasons=dict(o.reasons.most_common()),
    )


def missed(d: DeliveryInfo) -> views.MissedView:
    """A cluster that did not play."""
    return views.MissedView(device=d.device_id, state=d.state.value, reason=d.reason, detail=d.detail)


def bulletin_fields(b: BulletinInfo) -> dict[str, object]:
    """The fields every bulletin view shares."""
    return {
        "id": b.id,
        "title": b.title,
        "duration_s": round(b.duration_ms / 1000, 1),
        "codec": b.codec,
        "size": b.size,
        "sha256": b.sha256,
        "source": b.source_name,
        "created_at": b.created_at,
        "created_by": b.created_by,
        "loudness_lufs": b.loudness_lufs,
        "true_peak_dbtp": b.true_peak_dbtp,
        "profile": b.profile,
    }


def bulletin(b: BulletinInfo) -> views.BulletinView:
    """A bulletin."""
    return views.BulletinView.model_validate(bulletin_fields(b))


def imported(b: BulletinInfo, created: bool) -> views.ImportedView:
    """A bulletin just imported."""
    return views.ImportedView.model_validate(bulletin_fields(b) | {"created": created})


def variant(v: VariantInfo) -> views.VariantView:
    """One encoding."""
    return views.VariantView(codec=v.codec, bitrate_kbps=v.bitrate_kbps, size=v.size, sha256=v.sha256)


def airing(a: Airing, zone_names: Mapping[str, str]) -> views.AiringView:
    """One broadcast of a bulletin."""
    b = a.broadcast
    return views.AiringView(
        broadcast=b.id,
        at=b.created_at,
        state=b.state.value,
        priority=b.priority.wire,
        targets=[views.TargetView(id=t, name=zone_names.get(t, t)) for t in b.targets],
        clusters=a.clusters,
        played=a.played,
        first_playing_at=a.first_playing_at,
        last_finished_at=a.last_finished_at,
    )


def local(at: datetime | None, tz: str) -> datetime | None:
    """A moment in the local time of `tz` (so it is written with that offset)."""
    return None if at is None else at.astimezone(zone_info(tz))


def schedule_fields(s: Schedule, next_at: datetime | None) -> dict[str, object]:
    """The fields every schedule view shares."""
    return {
        "id": s.id,
        "name": s.name,
        "bulletin": s.bulletin_id,
        "relay": s.relay.url if s.relay else None,
        "targets": list(s.targets),
        "rule": s.rule.describe(),
        "priority": s.priority.wire,
        "on_preempt": s.on_preempt.value,
        "window_s": s.window_s,
        "paused": s.paused,
        "next_at": local(next_at, s.rule.tz),
    }


def schedule(s: Schedule, next_at: datetime | None) -> views.ScheduleView:
    """A schedule and its next air time."""
    return views.ScheduleView.model_validate(schedule_fields(s, next_at))


def overlap(o: Overlap, tz: str) -> views.OverlapView:
    """An overlap with an existing schedule, in local time."""
    return views.OverlapView(
        existing=o.existing_id, at=o.at.astimezone(zone_info(tz)), winner=o.winner_id, why=o.why
    )


def run(r: Run, tz: str) -> views.RunView:
    """One occurrence of a schedule, in the schedule's local time."""
    return views.RunView(
        fire_at=r.fire_at.astimezone(zone_info(tz)),
        state=r.state.value,
        broadcast=r.broadcast_id,
        detail=r.detail,
    )


def segment(g: Segment, tz: str) -> views.SegmentView:
    """A stretch of air time, in local time."""
    return views.SegmentView(
        start=g.start.astimezone(zone_info(tz)),
        end=g.end.astimezone(zone_info(tz)),
        target=g.target,
        schedule=g.schedule_id,
        priority=views.priority_name(g.priority),
        note=g.note,
    )


def configure_outcome(r: Reconfigured) -> views.ConfigureView:
    """One cluster's answer to `configure`."""
    return views.ConfigureView(device=r.device_id, outcome=r.outcome.value, detail=r.detail)


def item(i: ItemInfo) -> views.ItemView:
    """An approval item."""
    return views.ItemView(
        id=i.id,
        kind=i.kind.value,
        bulletin=i.bulletin_id,
        zone=i.zone_id,
        targets=list(i.targets),
        priority=views.priority_name(i.priority),
        from_above=i.from_above,
        submitted_by=i.submitted_by,
        submitted_at=i.submitted_at,
        at=i.at,
        state=i.state.value,
        decided_by=i.decided_by,
        decided_at=i.decided_at,
        reason=i.reason,
        result=i.result,
    )
