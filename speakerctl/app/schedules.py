"""Schedules: add (with overlap warnings), list, show, pause, resume, remove, and a day's preview."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta

from speakerctl.app import audit, names, policy, records, views
from speakerctl.app import confirmation as confirming
from speakerctl.app.access import Action, Actor, authorize
from speakerctl.app.broadcasts import parse_priority
from speakerctl.app.context import AppContext
from speakerctl.controller.planning import resolve_targets
from speakerctl.dates import parse_day, parse_moment
from speakerctl.errors import UsageError
from speakerctl.i18n import _
from speakerctl.protocol import PreemptPolicy, Priority
from speakerctl.scheduler.book import ScheduleBook
from speakerctl.scheduler.model import DEFAULT_WINDOW_S, Relay, Schedule, new_schedule_id
from speakerctl.scheduler.plan import Overlap, Segment, occurrences_on, overlaps, resolve
from speakerctl.scheduler.rules import ALL_DAYS, Kind, Rule, parse_times, parse_weekdays, zone_info
from speakerctl.store import ItemKind, Store

WINDOW_S = DEFAULT_WINDOW_S
"""How late a schedule may still air unless told otherwise, seconds."""
UPCOMING = 5
"""`schedule show` lists this many next air times…"""
RECENT_RUNS = 10
"""…and this many past runs."""


@dataclass(frozen=True, slots=True)
class Added:
    """A schedule just added, its next air time, and what it overlaps."""

    schedule: Schedule
    next_at: datetime | None
    overlaps: list[Overlap]


def parse_at(text: str, tz: str) -> datetime:
    """A moment in local time ('dd/mm/yyyy HH:MM' or 'YYYY-MM-DD HH:MM') or with its offset."""
    return parse_moment(text, zone_info(tz))


def parse_date(text: str | None) -> date | None:
    """A date, dd/mm/yyyy or YYYY-MM-DD."""
    return None if text is None else parse_day(text)


def parse_policy(value: str) -> PreemptPolicy:
    """What a schedule does when a higher level cuts it."""
    try:
        return PreemptPolicy(value)
    except ValueError:
        raise UsageError(
            _("unknown policy {value!r}").format(value=value), hint=_("use resume, restart or drop")
        ) from None


def build_rule(
    tz: str,
    at: str | None = None,
    daily: str | None = None,
    weekly: str | None = None,
    cron: str | None = None,
    days: str | None = None,
    repeat: int = 1,
    gap: int = 0,
    valid_from: str | None = None,
    valid_until: str | None = None,
) -> Rule:
    """A rule from exactly one of --at, --daily, --weekly, --cron, with the common options."""
    given = [
        (k, v) for k, v in ((Kind.AT, at), (Kind.DAILY, daily), (Kind.WEEKLY, weekly), (Kind.CRON, cron)) if v
    ]
    if len(given) != 1:
        raise UsageError(
            _("give exactly one of --at, --daily, --weekly, --cron"), hint=_("e.g. --daily 05:00,17:00")
        )
    kind, value = given[0]
    if kind is Kind.WEEKLY and not days:
        raise UsageError(_("--weekly needs --days"), hint=_("e.g. --weekly 05:00 --days mon-sat"))
    return Rule(
        kind,
        times=parse_times(value) if kind in (Kind.DAILY, Kind.WEEKLY) else (),
        weekdays=parse_weekdays(days) if days else ALL_DAYS,
        at=parse_at(value, tz) if kind is Kind.AT else None,
        cron=value if kind is Kind.CRON else "",
        repeat=repeat,
        gap_s=gap,
        valid_from=parse_date(valid_from),
        valid_until=parse_date(valid_until),
        tz=tz,
    )


@dataclass(frozen=True, slots=True)
class ScheduleSpec:
    """What `schedule add` was told, before validation."""

    bulletin_id: int
    targets: list[str]
    rule: Rule
    priority: str = "normal"
    on_preempt: str = "resume"
    window_s: int = DEFAULT_WINDOW_S
    name: str = ""
    relay_url: str = ""
    """A relay schedule (`--relay URL`): this station live instead of a bulletin (bulletin_id 0)."""
    relay_for_s: float | None = None

    def relay(self) -> Relay | None:
        """The relay asked for, validated (UsageError without --for, or with a bulletin too)."""
        if not self.relay_url:
            if self.relay_for_s is not None:
                raise UsageError(_("--for goes with --relay"), hint=_("a bulletin airs for its own length"))
            return None
        if self.bulletin_id:
            raise UsageError(_("give a bulletin or --relay, not both"))
        if self.relay_for_s is None:
            raise UsageError(_("a relay needs --for"), hint=_("e.g. --relay URL --daily 06:00 --for 30m"))
        return Relay(self.relay_url, round(self.relay_for_s))


def durations(store: Store) -> dict[int, int]:
    """Bulletin lengths, milliseconds, by bulletin id."""
    return {b.id: b.duration_ms for b in store.bulletins.all()}


class DeviceSets:
    """The clusters a schedule's targets reach, cached per target list."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._cache: dict[tuple[str, ...], frozenset[str]] = {}

    def of(self, targets: tuple[str, ...]) -> frozenset[str]:
        """Device ids under the targets (NotFound for an unknown one)."""
        if targets not in self._cache:
            self._cache[targets] = frozenset(resolve_targets(self.store, targets)[1])
        return self._cache[targets]

    def share(self, a: Schedule, b: Schedule) -> bool:
        """Whether two schedules reach a common cluster."""
        return bool(self.of(a.targets) & self.of(b.targets))


def check_schedule(store: Store, schedule: Schedule, now: datetime) -> DeviceSets:
    """UsageError unless it will air; NotFound for an unknown bulletin or target."""
    if not schedule.rule.airs_after(now):
        raise UsageError(
            _("this schedule would never air: {rule}").format(rule=schedule.rule.describe()),
            hint=_(
                "check the date: is it in the past, or one the calendar does not have (e.g. 30 February)?"
            ),
        )
    if schedule.relay is None:
        store.bulletins.get(schedule.bulletin_id)
    sets = DeviceSets(store)
    sets.of(schedule.targets)
    return sets


def add_schedule(store: Store, book: ScheduleBook, schedule: Schedule, now: datetime) -> Added:
    """Validate the bulletin and targets, store the schedule, and report overlaps in the next 14 days."""
    sets = check_schedule(store, schedule, now)
    found = overlaps(schedule, book.all(), durations(store), sets.share, now)
    book.add(schedule)
    return Added(schedule, schedule.rule.next_after(now), found)


def confirmation(ctx: AppContext, spec: ScheduleSpec, *, actor: Actor) -> confirming.Confirmation | None:
    """What `actor` must confirm before this schedule is installed (None: nothing, or it would wait for
    approval); NotAllowed first if the actor may not schedule there at all."""
    level, store = parse_priority(spec.priority), ctx.store()
    targets = tuple(names.target_ids(store, spec.targets))
    relay = spec.relay()
    relayed = {policy.RELAY_URL: relay.url} if relay else {}
    asked = policy.Request(ItemKind.SCHEDULE, spec.bulletin_id, targets, level, spec=relayed)
    if not policy.route(store, actor, asked, ctx.clock.now()).direct:
        return None
    return confirming.needed(store, targets, level, confirming.Kind.SCHEDULE)


def add(ctx: AppContext, spec: ScheduleSpec, *, actor: Actor, confirmed: bool = False) -> Added:
    """Add a schedule; says which existing schedules it overlaps and which one wins.

    One the actor may not install directly is queued instead (AwaitsApproval, see app/policy.py). What
    is installed at once needs `confirmed` if it is an emergency or province-wide (see `confirmation`).
    """
    now, store = ctx.clock.now(), ctx.store()
    schedule = Schedule(
        new_schedule_id(),
        spec.bulletin_id,
        tuple(names.target_ids(store, spec.targets)),
        spec.rule,
        parse_priority(spec.priority),
        parse_policy(spec.on_preempt),
        spec.window_s,
        name=spec.name,
        created_at=now,
        approved_by=actor.name,
        relay=spec.relay(),
    )
    check_schedule(store, schedule, now)
    asked = policy.Request(ItemKind.SCHEDULE, schedule.bulletin_id, schedule.targets, schedule.priority)
    routing = policy.route(store, actor, replace(asked, spec=item_spec(schedule)), now)
    if not routing.direct:
        raise policy.awaiting(policy.queue_items(store, actor, routing.held))
    kind = confirming.Kind.SCHEDULE
    confirming.require(confirming.needed(store, schedule.targets, schedule.priority, kind), confirmed)
    added = add_schedule(store, ctx.book(), schedule, now)
    if routing.notes:
        policy.queue_items(store, actor, [replace(n, result=schedule.id) for n in routing.notes])
    audited(store, actor, "schedule_add", schedule, now)
    return added


def audited(store: Store, actor: Actor, action: str, schedule: Schedule, now: datetime) -> None:
    """An audit entry for a schedule."""
    what = f"relay {schedule.relay.url}" if schedule.relay else f"bulletin {schedule.bulletin_id}"
    detail = f"{what} to {', '.join(schedule.targets)}: {schedule.rule.describe()}"
    audit.record(store, actor, action, now, subject=f"schedule {schedule.id}", detail=detail)


def item_spec(schedule: Schedule) -> dict[str, object]:
    """What an approval item keeps of a schedule waiting for approval."""
    return {
        "rule": dict(schedule.rule.to_dict()),
        "on_preempt": schedule.on_preempt.value,
        "window_s": schedule.window_s,
        "name": schedule.name,
    } | _relay_spec(schedule.relay)


def _relay_spec(relay: Relay | None) -> dict[str, object]:
    return {policy.RELAY_URL: relay.url, "relay_for_s": relay.duration_s} if relay else {}


def from_item_spec(
    spec: Mapping[str, object],
    bulletin_id: int,
    targets: tuple[str, ...],
    priority: int,
    approved_by: str,
    now: datetime,
) -> Schedule:
    """The schedule an approved item describes, approved by `approved_by`."""
    rule = spec["rule"]
    assert isinstance(rule, dict)
    url = str(spec.get(policy.RELAY_URL, ""))
    relay = Relay(url, int(str(spec.get("relay_for_s", 0)))) if url else None
    return Schedule(
        new_schedule_id(),
        bulletin_id,
        targets,
        Rule.from_dict(rule),
        Priority(priority),
        PreemptPolicy(str(spec["on_preempt"])),
        int(str(spec["window_s"])),
        name=str(spec["name"]),
        created_at=now,
        approved_by=approved_by,
        relay=relay,
    )


def _authorized(ctx: AppContext, schedule_id: str, actor: Actor) -> tuple[Store, ScheduleBook, Schedule]:
    store, book = ctx.store(), ctx.book()
    schedule = book.get(schedule_id)
    authorize(actor, Action.SCHEDULE, policy.zones_of(store, schedule.targets), policy.zone_tree(store))
    return store, book, schedule


def added_view(added: Added) -> views.AddedScheduleView:
    """A schedule just added, with its overlaps."""
    fields = records.schedule_fields(added.schedule, added.next_at)
    return views.AddedScheduleView.model_validate(
        fields | {"overlaps": [records.overlap(o, added.schedule.rule.tz) for o in added.overlaps]}
    )


def list_all(ctx: AppContext, book: ScheduleBook | None = None) -> list[tuple[Schedule, views.ScheduleView]]:
    """Every schedule with its next air time (none while paused); `book`: one on an open store."""
    now = ctx.clock.now()
    found = [(s, None if s.paused else s.rule.next_after(now)) for s in (book or ctx.book()).all()]
    return [(s, records.schedule(s, at)) for s, at in found]


def show(
    ctx: AppContext, schedule_id: str, book: ScheduleBook | None = None
) -> tuple[Schedule, views.ScheduleDetailView]:
    """One schedule: its next air times and what became of its recent runs."""
    book, now = book or ctx.book(), ctx.clock.now()
    s = book.get(schedule_id)
    upcoming = s.rule.occurrences(now, now + timedelta(days=400))[:UPCOMING]
    fields = records.schedule_fields(s, upcoming[0] if upcoming else None) | {
        "upcoming": [records.local(t, s.rule.tz) for t in upcoming],
        "runs": [records.run(r, s.rule.tz) for r in book.runs(schedule_id)[-RECENT_RUNS:]],
    }
    return s, views.ScheduleDetailView.model_validate(fields)


def set_paused(ctx: AppContext, schedule_id: str, paused: bool, *, actor: Actor) -> None:
    """Pause a schedule (broadcasts already pushed to clusters are stopped by `serve`) or resume it."""
    store, book, schedule = _authorized(ctx, schedule_id, actor)
    book.save(schedule.bumped(paused=paused))
    audited(store, actor, "schedule_pause" if paused else "schedule_resume", schedule, ctx.clock.now())


def remove(ctx: AppContext, schedule_id: str, *, actor: Actor) -> None:
    """Delete a schedule (its history stays)."""
    store, book, schedule = _authorized(ctx, schedule_id, actor)
    book.remove(schedule_id)
    audited(store, actor, "schedule_remove", schedule, ctx.clock.now())


def preview(store: Store, book: ScheduleBook, day: date, timezone: str) -> list[Segment]:
    """What airs where on a local day, in order, after priority resolution."""
    items = occurrences_on(book.all(), durations(store), day, zone_info(timezone))
    return resolve(items)


def preview_day(ctx: AppContext, day: str) -> tuple[date, list[views.SegmentView]]:
    """The day's preview in the controller's time zone."""
    when = parse_date(day)
    assert when is not None
    tz = ctx.settings.timezone
    segments = preview(ctx.store(sync_inventory=False), ctx.book(), when, tz)
    return when, [records.segment(g, tz) for g in segments]
