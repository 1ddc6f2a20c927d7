"""CAP 1.2, pure: safe parsing, schema checks, the Vietnamese block, areas, feed indexes, the rule table."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta

import pytest
from cap_docs import (
    BILLION_LAUGHS,
    EXTERNAL_ENTITY,
    MALFORMED,
    SENDER,
    alert,
    circle_area,
    geocode_area,
    polygon_area,
    reference,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from speakerctl.cap import MsgType, Point, Status, default_rules, feed_links, parse_alert
from speakerctl.cap.area import covered, distance_km
from speakerctl.cap.rules import load_rules
from speakerctl.errors import AlertRejected, ConfigError
from speakerctl.protocol import Priority

NOW = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)
CLUSTERS = [Point(f"c{n}-0{k}", 10.0 + n / 100, 105.7 + k / 100) for n in (1, 2, 3) for k in (1, 2)]


def test_a_valid_alert_parses_with_its_vietnamese_block_whichever_comes_first() -> None:
    for english_first in (True, False):
        a = parse_alert(alert("A1", NOW, expires=NOW + timedelta(hours=2), english_first=english_first))
        assert (a.key.sender, a.key.identifier, a.key.sent) == (SENDER, "A1", NOW)
        assert (a.status, a.msg_type) == (Status.ACTUAL, MsgType.ALERT)
        info = a.info()
        assert info is not None and info.language == "vi-VN" and info.headline == "Cảnh báo lũ quét"
        assert a.expires == NOW + timedelta(hours=2)


def test_references_name_earlier_alerts() -> None:
    a = parse_alert(alert("A2", NOW, msg_type="Update", references=reference("A1", NOW - timedelta(hours=1))))
    assert [(r.identifier, r.sent) for r in a.references] == [("A1", NOW - timedelta(hours=1))]


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (BILLION_LAUGHS, "DTD"),
        (EXTERNAL_ENTITY, "DTD"),
        (MALFORMED, "well-formed"),
        (alert("A", NOW, status="Bogus"), "valid CAP 1.2"),
        (alert("A", NOW).replace(b"cap:1.2", b"cap:1.1"), "valid CAP 1.2"),
        (b"<alert" + b" " * 600_000 + b"/>", "larger"),
        (b"\xff\xfe not xml", "well-formed"),
    ],
)
def test_hostile_or_invalid_documents_are_rejected_with_a_reason(document: bytes, reason: str) -> None:
    with pytest.raises(AlertRejected, match=reason):
        parse_alert(document)


def test_a_sent_time_in_z_form_is_invalid_as_the_schema_says() -> None:
    doc = alert("A", NOW).replace(b"+07:00</sent>", b"Z</sent>")
    with pytest.raises(AlertRejected, match=r"valid CAP 1\.2"):
        parse_alert(doc)


def test_polygon_and_circle_cover_exactly_the_clusters_inside() -> None:
    poly = parse_alert(alert("P", NOW, area=polygon_area())).info()
    circle = parse_alert(alert("C", NOW, area=circle_area())).info()
    assert poly is not None and circle is not None
    assert covered(poly.areas, CLUSTERS) == {"c1-01", "c1-02", "c2-01", "c2-02"}
    assert covered(circle.areas, CLUSTERS) == {"c3-01", "c3-02"}


def test_great_circle_distance_is_in_kilometres() -> None:
    assert distance_km(10.0, 105.0, 10.0, 106.0) == pytest.approx(109.5, abs=0.2)


def test_geocodes_map_to_zones_through_the_table(tmp_path: object) -> None:
    rules = default_rules()
    info = parse_alert(alert("G", NOW, area=geocode_area())).info()
    assert info is not None and rules.zones(info.areas) == set()
    table = rules.__class__(rules.rules, rules.risk_parameters, {("VN-ADM", "31471"): "c2"})
    assert table.zones(info.areas) == {"c2"}


@pytest.mark.parametrize(
    ("severity", "urgency", "certainty", "risk", "level"),
    [
        ("Minor", "Future", "Possible", 5, Priority.EMERGENCY),
        ("Extreme", "Immediate", "Observed", None, Priority.EMERGENCY),
        ("Moderate", "Expected", "Likely", 3, Priority.PRIORITY),
        ("Severe", "Expected", "Likely", None, Priority.PRIORITY),
        ("Minor", "Future", "Possible", 1, Priority.NORMAL),
        ("Unknown", "Unknown", "Unknown", None, Priority.NORMAL),
    ],
)
def test_the_default_rule_table(
    severity: str, urgency: str, certainty: str, risk: int | None, level: Priority
) -> None:
    doc = alert("R", NOW, severity=severity, urgency=urgency, certainty=certainty, risk_level=risk)
    info = parse_alert(doc).info()
    assert info is not None and default_rules().priority(info) is level


def test_a_bad_rule_file_is_a_config_error_naming_the_row(tmp_path: pytest.TempPathFactory) -> None:
    path = tmp_path / "rules.toml"  # type: ignore[operator]
    path.write_text('[[rule]]\nseverity = ["Extreme"]\npriority = "loud"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="rule 1"):
        load_rules(str(path))


def test_feed_indexes_atom_and_rss() -> None:
    atom = b"""<?xml version="1.0" encoding="UTF-8"?><feed xmlns="http://www.w3.org/2005/Atom">
    <title>Canh bao</title>
    <entry><title>a</title><link rel="alternate" href="/html/1"/>
    <link type="application/cap+xml" href="cap/1.xml"/></entry>
    <entry><title>b</title><link href="https://x.example/cap/2.xml"/></entry></feed>"""
    rss = b"<rss version='2.0'><channel><item><link>/cap/3.xml</link></item></channel></rss>"
    assert feed_links(atom, "http://h/feed/") == ["http://h/feed/cap/1.xml", "https://x.example/cap/2.xml"]
    assert feed_links(rss, "http://h/feed") == ["http://h/cap/3.xml"]
    with pytest.raises(AlertRejected):
        feed_links(BILLION_LAUGHS, "http://h/")


VALID = alert(
    "F", NOW, expires=NOW + timedelta(hours=1), area=polygon_area() + "<circle>10.0,105.7 1</circle>"
)


@settings(max_examples=300, deadline=None)
@given(
    st.binary(max_size=2000)
    | st.builds(
        lambda at, b: VALID[:at] + b + VALID[at + 1 :], st.integers(0, len(VALID)), st.binary(max_size=3)
    )
)
def test_no_document_crashes_the_parser(document: bytes) -> None:
    """Random bytes and valid alerts with bytes changed: an alert or AlertRejected, nothing else."""
    with contextlib.suppress(AlertRejected):
        parse_alert(document)


def test_a_reference_without_its_offset_is_refused() -> None:
    with pytest.raises(AlertRejected, match="references"):
        parse_alert(alert("U", NOW, msg_type="Update", references=f"{SENDER},A,2026-11-30T08:00:00"))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000))
def test_no_index_crashes_the_feed_reader(index: bytes) -> None:
    with contextlib.suppress(AlertRejected):
        feed_links(index, "http://h/")


def test_an_unknown_declared_encoding_is_refused_not_a_crash() -> None:
    with pytest.raises(AlertRejected, match="well-formed"):
        parse_alert(b'<?xml version="1.0" encoding="T"?><alert/>')
