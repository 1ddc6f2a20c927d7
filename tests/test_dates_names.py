"""What people type: dd/mm/yyyy dates in the installation's time zone, and zone or cluster names without
diacritics with a "did you mean"; what they read: local times labelled with their offset."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from speakerctl.audio import generate_tone
from speakerctl.cli import common
from speakerctl.cli.main import app
from speakerctl.clock import FixedClock
from speakerctl.dates import (
    format_clock,
    format_day,
    format_moment,
    parse_day,
    parse_day_or_moment,
    parse_moment,
    zone_label,
)
from speakerctl.errors import NotFound, UsageError
from speakerctl.fleet.names import Named, find, fold, resolve, suggestions
from speakerctl.i18n import set_language

VN = ZoneInfo("Asia/Ho_Chi_Minh")


@pytest.mark.parametrize(
    ("typed", "day"),
    [
        ("29/11/2026", date(2026, 11, 29)),
        ("1/2/2026", date(2026, 2, 1)),  # day first, always
        (" 05/06/2026 ", date(2026, 6, 5)),
        ("2026-11-29", date(2026, 11, 29)),  # ISO still works
        ("29/02/2028", date(2028, 2, 29)),
    ],
)
def test_dates_are_read_day_first(typed: str, day: date) -> None:
    assert parse_day(typed) == day


@pytest.mark.parametrize("typed", ["30/02/2026", "29/02/2027", "12/25/2026", "29/11/26", "29-11-2026", "mai"])
def test_impossible_or_ambiguous_dates_are_refused_not_guessed(typed: str) -> None:
    with pytest.raises(UsageError, match="as a date") as caught:
        parse_day(typed)
    assert "day/month/year" in caught.value.hint


def test_a_typed_moment_is_local_unless_it_carries_an_offset() -> None:
    assert parse_moment("29/11/2026 05:00", VN) == datetime(2026, 11, 29, 5, 0, tzinfo=VN)
    assert parse_moment("29/11/2026 5:07:09", VN) == datetime(2026, 11, 29, 5, 7, 9, tzinfo=VN)
    assert parse_moment("2026-11-29 05:00", VN) == datetime(2026, 11, 29, 5, 0, tzinfo=VN)
    assert parse_moment("2026-11-29T05:00+00:00", VN) == datetime(2026, 11, 29, 5, 0, tzinfo=UTC)
    with pytest.raises(UsageError, match="a time of day"):
        parse_moment("29/11/2026 24:30", VN)
    with pytest.raises(UsageError, match="as a date"):
        parse_moment("31/11/2026 05:00", VN)


def test_a_report_period_ends_after_its_last_day() -> None:
    assert parse_day_or_moment("29/11/2026", VN) == datetime(2026, 11, 29, tzinfo=VN)
    assert parse_day_or_moment("29/11/2026", VN, end=True) == datetime(2026, 11, 30, tzinfo=VN)
    assert parse_day_or_moment("2026-11-29", VN, end=True) == datetime(2026, 11, 30, tzinfo=VN)
    assert parse_day_or_moment("29/11/2026 06:00", VN, end=True) == datetime(2026, 11, 29, 6, tzinfo=VN)


def test_times_are_shown_local_and_labelled() -> None:
    at = datetime(2026, 11, 29, 22, 0, tzinfo=UTC)  # 05:00 on the 30th in Việt Nam
    assert zone_label(VN, at) == "UTC+07:00"
    assert zone_label(ZoneInfo("America/St_Johns"), at) == "UTC-03:30"
    assert format_moment(at, VN, label=True) == "Mon 30/11/2026 05:00 (UTC+07:00)"
    assert format_clock(at, VN) == "05:00 (UTC+07:00)"
    assert format_day(date(2026, 3, 1)) == "01/03/2026"
    set_language("vi")
    assert format_moment(at, VN, seconds=True) == "Thứ 2 30/11/2026 05:00:00"


ZONES = [
    Named("st-ke-sach", "Kế Sách", "district", ("huyện Kế Sách", "district Kế Sách")),
    Named("st-ke-sach-tt", "Kế Sách", "township", ("thị trấn Kế Sách", "township Kế Sách")),
    Named("st-ke-an", "Kế An", "commune", ("xã Kế An",)),
    Named("st-dai-tam", "Đại Tâm", "commune", ("xã Đại Tâm",)),
]


def test_names_fold_case_diacritics_and_d_with_stroke() -> None:
    assert fold("Kế Sách") == fold("ke sach") == fold("KE-SACH") == "ke sach"
    assert fold("Đại Tâm") == "dai tam" and fold("  Thạnh   Trị ") == "thanh tri"
    assert [z.id for z in find("dai tam", ZONES)] == ["st-dai-tam"]
    assert resolve("DAI TAM", ZONES, "zone").id == "st-dai-tam"
    assert resolve("st-ke-an", ZONES, "zone").id == "st-ke-an"  # ids as before
    assert resolve("thi tran ke sach", ZONES, "zone").id == "st-ke-sach-tt"
    assert resolve("xa ke an", ZONES, "zone").id == "st-ke-an"


def test_a_name_shared_by_two_zones_lists_both() -> None:
    with pytest.raises(UsageError) as caught:
        resolve("ke sach", ZONES, "zone")
    assert "Kế Sách (district, st-ke-sach)" in str(caught.value)
    assert "Kế Sách (township, st-ke-sach-tt)" in str(caught.value)
    assert "district ke sach" in caught.value.hint


def test_an_unknown_name_suggests_the_closest() -> None:
    with pytest.raises(NotFound, match="no zone named 'ke sachh'") as caught:
        resolve("ke sachh", ZONES, "zone")
    assert caught.value.hint.startswith("did you mean: Kế Sách (district, st-ke-sach); Kế Sách (township")
    assert [z.id for z in suggestions("dai tan", ZONES)] == ["st-dai-tam"]
    with pytest.raises(NotFound) as nothing:
        resolve("Hà Nội", ZONES, "zone")
    assert "zones list" in nothing.value.hint


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[CliRunner, list[str]]:
    """A data directory with one bulletin (id 1); the clock pinned at 29/11/2026 00:00 UTC."""
    monkeypatch.setattr(common.state, "clock", FixedClock(datetime(2026, 11, 29, tzinfo=UTC)))
    runner, opts = CliRunner(), ["--data-dir", str(tmp_path / "data")]
    tone = generate_tone(1.0, path=tmp_path / "tin.wav")
    assert runner.invoke(app, [*opts, "bulletin", "add", str(tone)]).exit_code == 0
    return runner, opts


def test_schedule_takes_names_and_dd_mm_yyyy_and_shows_labelled_local_time(
    cli: tuple[CliRunner, list[str]],
) -> None:
    runner, opts = cli
    args = [*opts, "schedule", "add", "1", "--to", "ke an", "--to", "thi tran ke sach"]
    added = runner.invoke(app, [*args, "--at", "30/11/2026 05:00", "--json"])
    assert added.exit_code == 0, added.output
    view = json.loads(added.output)
    assert view["targets"] == ["st-ke-sach-ke-an", "st-ke-sach-tt-ke-sach"]
    assert view["next_at"] == "2026-11-30T05:00:00+07:00"
    listed = runner.invoke(app, [*opts, "schedule", "list"], env={"COLUMNS": "200"}).output
    assert "next (UTC+07:00)" in listed and "Mon 30/11/2026 05:00" in listed
    vi = runner.invoke(app, [*opts, "schedule", "list"], env={"COLUMNS": "200", "SPEAKERCTL_LANG": "vi"})
    assert "lần tới (UTC+07:00)" in vi.output and "Thứ 2 30/11/2026 05:00" in vi.output


def test_impossible_dates_and_ambiguous_names_are_refused_before_anything_is_stored(
    cli: tuple[CliRunner, list[str]],
) -> None:
    runner, opts = cli
    bad_day = runner.invoke(app, [*opts, "schedule", "add", "1", "--to", "ke an", "--at", "30/02/2027 05:00"])
    assert isinstance(bad_day.exception, UsageError)
    both = runner.invoke(app, [*opts, "schedule", "add", "1", "--to", "ke sach", "--daily", "05:00"])
    assert isinstance(both.exception, UsageError) and "st-ke-sach-tt-ke-sach" in str(both.exception)
    assert json.loads(runner.invoke(app, [*opts, "schedule", "list", "--json"]).output) == []
    since = runner.invoke(app, [*opts, "report", "--since", "28/11/2026", "--until", "29/11/2026", "--json"])
    assert since.exit_code == 0 and json.loads(since.output) == []
    devices = runner.invoke(app, [*opts, "devices", "list", "--zone", "xa ke an", "--json"])
    assert {d["zone"] for d in json.loads(devices.output)} == {"st-ke-sach-ke-an"}
