"""Schedule maths with fixed dates: rules, the APScheduler trigger, priority resolution, quiet hours."""

from __future__ import annotations

import pickle
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from speakerctl.errors import ConfigError, UsageError
from speakerctl.protocol import PreemptPolicy, Priority
from speakerctl.scheduler.model import Schedule
from speakerctl.scheduler.plan import Item, occurrences_on, overlaps, resolve
from speakerctl.scheduler.rules import Kind, Rule, cron_weekdays, parse_times, parse_weekdays
from speakerctl.scheduler.trigger import RuleTrigger
from speakerctl.scheduler.volume import VolumePlan, parse_quiet_hours

VN = ZoneInfo("Asia/Ho_Chi_Minh")


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=VN)  # type: ignore[misc]


def _fmt(times: list[datetime]) -> list[str]:
    return [f"{t.astimezone(VN):%a %Y-%m-%d %H:%M:%S}" for t in times]


MORNING_AND_AFTERNOON = Rule(
    Kind.WEEKLY, times=parse_times("05:00,17:00"), weekdays=parse_weekdays("mon-sat")
)


def test_weekly_mon_to_sat_across_the_turn_of_the_year() -> None:
    # 2026-12-31 is a Thursday; 2027-01-03 a Sunday: no programme that day.
    got = MORNING_AND_AFTERNOON.occurrences(local(2026, 12, 31, 12, 0), local(2027, 1, 4, 6, 0))
    assert _fmt(got) == [
        "Thu 2026-12-31 17:00:00",
        "Fri 2027-01-01 05:00:00",
        "Fri 2027-01-01 17:00:00",
        "Sat 2027-01-02 05:00:00",
        "Sat 2027-01-02 17:00:00",
        "Mon 2027-01-04 05:00:00",
    ]
    assert all(t.tzinfo is UTC for t in got)
    assert got[1] == datetime(2026, 12, 31, 22, 0, tzinfo=UTC)  # 05:00 in Vietnam is 22:00 UTC the day before


def test_next_after_skips_sunday_and_is_strict() -> None:
    sat_evening = local(2027, 1, 2, 17, 0)
    assert MORNING_AND_AFTERNOON.next_after(sat_evening) == local(2027, 1, 4, 5, 0)
    assert MORNING_AND_AFTERNOON.next_after(sat_evening - timedelta(seconds=1)) == sat_evening


def test_daily_repeat_with_gap_and_validity_dates() -> None:
    rule = Rule(
        Kind.DAILY,
        times=(time(6, 30),),
        repeat=3,
        gap_s=30,
        valid_from=date(2027, 2, 1),
        valid_until=date(2027, 2, 2),
    )
    got = rule.occurrences(local(2027, 1, 30), local(2027, 2, 10))
    assert _fmt(got) == [
        "Mon 2027-02-01 06:30:00",
        "Mon 2027-02-01 06:30:30",
        "Mon 2027-02-01 06:31:00",
        "Tue 2027-02-02 06:30:00",
        "Tue 2027-02-02 06:30:30",
        "Tue 2027-02-02 06:31:00",
    ]
    assert rule.next_after(local(2027, 2, 3)) is None
    assert "3× 30 s apart" in rule.describe()


def test_one_off_in_another_time_zone() -> None:
    rule = Rule(Kind.AT, at=datetime(2027, 3, 1, 8, 0, tzinfo=ZoneInfo("Europe/Paris")), tz="Europe/Paris")
    assert rule.occurrences(local(2027, 3, 1), local(2027, 3, 2)) == [datetime(2027, 3, 1, 7, 0, tzinfo=UTC)]
    assert rule.next_after(datetime(2027, 3, 1, 7, 0, tzinfo=UTC)) is None


def test_cron_uses_standard_weekday_numbers() -> None:
    rule = Rule(Kind.CRON, cron="0 5 * * 1-6")
    got = rule.occurrences(local(2027, 1, 1), local(2027, 1, 8))
    assert [t.astimezone(VN).strftime("%a") for t in got] == ["Fri", "Sat", "Mon", "Tue", "Wed", "Thu"]
    assert cron_weekdays("0") == "sun" and cron_weekdays("7") == "sun"
    assert cron_weekdays("sat,sun") == "sun,sat"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": Kind.DAILY}, "at least one time"),
        ({"kind": Kind.CRON, "cron": "61 * * * *"}, "bad cron"),
        ({"kind": Kind.DAILY, "times": (time(5),), "repeat": 3, "gap_s": 3600}, "fit in an hour"),
        ({"kind": Kind.AT, "at": datetime(2027, 1, 1)}, "aware"),
        ({"kind": Kind.DAILY, "times": (time(5),), "tz": "Mars/Olympus"}, "unknown time zone"),
        (
            {
                "kind": Kind.DAILY,
                "times": (time(5),),
                "valid_from": date(2027, 2, 1),
                "valid_until": date(2027, 1, 1),
            },
            "before",
        ),
    ],
)
def test_bad_rules_say_what_to_fix(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises((UsageError, ConfigError), match=message):
        Rule(**kwargs)  # type: ignore[arg-type]


def test_weekday_and_time_parsing() -> None:
    assert parse_weekdays("mon-sat") == frozenset(range(6))
    assert parse_weekdays("sat-mon") == frozenset({5, 6, 0})
    assert parse_weekdays("1,3,5") == frozenset({0, 2, 4})
    assert parse_times("17:00, 05:00") == (time(5), time(17))
    with pytest.raises(UsageError, match="unknown weekday"):
        parse_weekdays("funday")
    with pytest.raises(UsageError, match="bad time of day"):
        parse_times("25:00")


def test_rule_survives_its_dict_and_the_trigger_pickles_with_a_version() -> None:
    rule = Rule(Kind.WEEKLY, times=(time(5),), weekdays=frozenset({0, 2}), repeat=2, gap_s=10)
    assert Rule.from_dict(rule.to_dict()) == rule
    trigger = pickle.loads(pickle.dumps(RuleTrigger(rule, lead_s=10)))
    now = local(2027, 1, 1, 12)  # a Friday
    first = trigger.get_next_fire_time(None, now)
    assert first == local(2027, 1, 4, 4, 59, 50)  # Monday 05:00, ten seconds ahead
    assert trigger.get_next_fire_time(first, now) == local(2027, 1, 4, 5, 0, 0)  # the repeat at 05:00:10


def _item(sid: str, minute: int, length: int, priority: Priority, policy: PreemptPolicy) -> Item:
    start = local(2027, 1, 4, 5, minute)
    return Item(sid, "st-ke-sach", start, timedelta(minutes=length), priority, policy)


def test_resolution_emergency_cuts_in_and_routine_resumes_then_queued_one_waits() -> None:
    segments = resolve(
        [
            _item("routine", 0, 10, Priority.NORMAL, PreemptPolicy.RESUME),
            _item("storm", 2, 3, Priority.EMERGENCY, PreemptPolicy.DROP),
            _item("notice", 4, 5, Priority.NORMAL, PreemptPolicy.DROP),
        ]
    )
    assert [
        (s.schedule_id, f"{s.start.astimezone(VN):%H:%M}", f"{s.end.astimezone(VN):%H:%M}", s.note)
        for s in segments
    ] == [
        ("routine", "05:00", "05:02", ""),
        ("storm", "05:02", "05:05", ""),
        ("routine", "05:05", "05:13", "resumed"),
        ("notice", "05:13", "05:18", "delayed"),
    ]


def test_resolution_restart_and_drop_policies() -> None:
    restart = resolve(
        [
            _item("a", 0, 10, Priority.NORMAL, PreemptPolicy.RESTART),
            _item("p", 5, 1, Priority.PRIORITY, PreemptPolicy.DROP),
        ]
    )
    assert [(s.schedule_id, s.end - s.start) for s in restart][-1] == ("a", timedelta(minutes=10))
    dropped = resolve(
        [
            _item("a", 0, 10, Priority.NORMAL, PreemptPolicy.DROP),
            _item("p", 5, 1, Priority.PRIORITY, PreemptPolicy.DROP),
        ]
    )
    assert [s.schedule_id for s in dropped] == ["a", "p"]


def test_newest_emergency_wins_and_same_level_waits() -> None:
    out = resolve(
        [
            _item("flood", 0, 5, Priority.EMERGENCY, PreemptPolicy.DROP),
            _item("update", 1, 2, Priority.EMERGENCY, PreemptPolicy.DROP),
        ]
    )
    assert [s.schedule_id for s in out] == ["flood", "update"]
    assert out[0].end == local(2027, 1, 4, 5, 1)


def test_preview_of_a_day_and_overlap_verdicts() -> None:
    daily = Schedule("sch-a", 1, ("st-ke-sach",), Rule(Kind.DAILY, times=(time(5),)))
    alert = Schedule(
        "sch-b", 2, ("st-ke-sach",), Rule(Kind.AT, at=local(2027, 1, 4, 5, 1)), priority=Priority.EMERGENCY
    )
    items = occurrences_on([daily, alert], {1: 600_000, 2: 60_000}, date(2027, 1, 4), VN)
    assert [(i.schedule_id, i.start) for i in items] == [
        ("sch-a", local(2027, 1, 4, 5)),
        ("sch-b", local(2027, 1, 4, 5, 1)),
    ]
    found = overlaps(alert, [daily], {1: 600_000, 2: 60_000}, lambda a, b: True, local(2027, 1, 3))
    assert [(o.existing_id, o.winner_id) for o in found] == [("sch-a", "sch-b")]
    same = Schedule("sch-c", 1, ("st-ke-sach",), Rule(Kind.DAILY, times=(time(5, 5),)))
    verdict = overlaps(same, [daily], {1: 600_000}, lambda a, b: True, local(2027, 1, 3))
    assert verdict[0].winner_id == "sch-a" and "first come" in verdict[0].why


def test_quiet_hours_per_zone_and_emergency_override() -> None:
    plan = VolumePlan(parse_quiet_hours("21:00-05:00=40,st-ke-sach@22:00-04:30=25"), 100, VN)
    night = local(2027, 1, 4, 23)
    assert plan.volume(("st-ke-sach",), night, Priority.NORMAL) == 25
    assert plan.volume(("st-my-xuyen",), night, Priority.NORMAL) == 40
    assert plan.volume(("st-ke-sach",), local(2027, 1, 4, 4, 45), Priority.NORMAL) == 40
    assert plan.volume(("st-ke-sach",), local(2027, 1, 4, 12), Priority.NORMAL) is None
    assert plan.volume(("st-ke-sach",), night, Priority.EMERGENCY) == 100
    with pytest.raises(ConfigError, match="quiet_hours entry"):
        parse_quiet_hours("22:00=30")


def test_airs_after_tells_a_rule_that_never_comes_round() -> None:
    now = datetime(2026, 12, 31, 12, tzinfo=VN)
    assert not Rule(Kind.AT, at=now - timedelta(minutes=1)).airs_after(now)
    assert Rule(Kind.AT, at=now + timedelta(minutes=1)).airs_after(now)
    assert not Rule(Kind.CRON, cron="0 5 30 2 *").airs_after(now)
    assert Rule(Kind.CRON, cron="0 5 29 2 *").airs_after(now)
    assert not Rule(Kind.DAILY, times=(time(5),), valid_until=date(2026, 12, 30)).airs_after(now)
    assert Rule(Kind.DAILY, times=(time(5),), valid_from=date(2031, 1, 1)).airs_after(now)
