"""docs/protocol.md stays true: every example decodes with the reference codec, every limit is quoted."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from speakerctl.app import views
from speakerctl.errors import ProtocolError
from speakerctl.protocol import Reason, codec, lifecycle, limits, messages, topics

DOC = Path(__file__).resolve().parent.parent / "docs" / "protocol.md"
MIN_EXAMPLES = 6
DECODERS: dict[str, Callable[[bytes], object]] = {
    "command": codec.decode_command,
    "event": codec.decode_event,
    "status": codec.decode_status,
    "bundle": codec.decode_bundle,
}
_EXAMPLE = re.compile(r"<!-- example: (\w+) -->\n```json\n(.*?)\n```", re.DOTALL)
_JSON_FENCE = re.compile(r"^```json$", re.MULTILINE)
_VIETNAMESE = re.compile("[ăâđêôơưạảấầẩẫậắằẳẵặẹẻẽếềểễệịỉọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹ]", re.IGNORECASE)


def _doc() -> str:
    return DOC.read_text(encoding="utf-8")


def _examples() -> list[tuple[str, str]]:
    return _EXAMPLE.findall(_doc())


def _limits() -> dict[str, object]:
    return {name: value for name, value in vars(limits).items() if name.isupper()}


def _rendered(value: object) -> str:
    """How a constant's value is written in the doc's limits table."""
    if isinstance(value, bytes):
        return value.decode("ascii")
    return str(value)


def test_doc_has_enough_examples_of_every_kind() -> None:
    kinds = [kind for kind, _ in _examples()]
    assert len(kinds) >= MIN_EXAMPLES, f"only {len(kinds)} examples in {DOC.name}"
    assert set(kinds) == set(DECODERS), f"example kinds {sorted(set(kinds))}, want {sorted(DECODERS)}"


def test_every_json_block_is_a_labelled_example() -> None:
    # An unlabelled ```json block would escape the decoding test below.
    assert len(_JSON_FENCE.findall(_doc())) == len(_examples())


@pytest.mark.parametrize(
    ("kind", "text"), [pytest.param(k, t, id=f"{i}-{k}") for i, (k, t) in enumerate(_examples(), 1)]
)
def test_example_decodes(kind: str, text: str) -> None:
    assert kind in DECODERS, f"unknown example kind {kind!r}: use command, event or status"
    DECODERS[kind](text.encode("utf-8"))


def test_examples_show_vietnamese_utf8() -> None:
    assert any(_VIETNAMESE.search(text) for _, text in _examples())


def test_every_limit_is_quoted_with_its_value() -> None:
    lines = _doc().splitlines()
    constants = _limits()
    assert len(constants) >= 16
    missing = [
        f"{name} = {_rendered(value)}"
        for name, value in constants.items()
        if not any(f"`{name}`" in line and f"`{_rendered(value)}`" in line for line in lines)
    ]
    assert not missing, f"limits not quoted with their value in {DOC.name}: {missing}"


@pytest.mark.parametrize("value", [*sorted(lifecycle.REPORTED), *Reason], ids=str)
def test_every_state_and_reason_is_documented(value: str) -> None:
    assert f"`{value}`" in _doc()


_KINDS_TABLE = re.compile(r"<!-- table: kinds by topic -->\n(.*?)\n\n", re.DOTALL)


def _kinds_by_topic() -> dict[str, set[str]]:
    """Topic pattern -> the `kind` values the doc's table allows on it."""
    rows = _KINDS_TABLE.findall(_doc())[0].splitlines()[2:]
    table = {}
    for row in rows:
        topic, _, kinds = (cell.strip() for cell in row.strip("|").split("|"))
        table[topic.strip("`")] = set(re.findall(r"`(\w+)`", kinds))
    return table


def test_the_kinds_by_topic_table_matches_the_codes_routing() -> None:
    table = _kinds_by_topic()
    assert table["pa/v1/dev/{device}/cmd"] == set(messages.COMMAND_KINDS)
    assert table["pa/v1/zone/{zone}/cmd"] == set(messages.ZONE_KINDS)
    assert table["pa/v1/dev/{device}/evt"] == set(messages.EVENT_KINDS)
    assert table["pa/v1/dev/{device}/status"] == table["pa/v1/content/{sha256}"] == set()
    zone, device = topics.zone_cmd("z"), topics.device_cmd("d")
    for kind in messages.COMMAND_KINDS:
        assert messages.check_command_topic(device, kind) == device
        if kind in table["pa/v1/zone/{zone}/cmd"]:
            assert messages.check_command_topic(zone, kind) == zone
        else:
            with pytest.raises(ProtocolError):
                messages.check_command_topic(zone, kind)


_VIEW_TABLE = re.compile(r"<!-- view: (\w+) -->\n\| Field .*?\n\|---.*?\n((?:\|.*\n)+)")
DOCUMENTED_VIEWS = {"BroadcastReportView", "ZoneOutcomeView", "MissedView", "PlayView"}
"""The JSON of `report --json` and of the play log: each view's fields are a table in §17."""


def _documented_fields() -> dict[str, list[str]]:
    tables = _VIEW_TABLE.findall(_doc())
    return {name: re.findall(r"^\| `(\w+)` \|", rows, re.MULTILINE) for name, rows in tables}


def test_report_json_fields_are_documented_exactly_as_the_views_have_them() -> None:
    documented = _documented_fields()
    assert set(documented) == DOCUMENTED_VIEWS
    for name, fields in documented.items():
        view = getattr(views, name)
        assert fields == list(view.model_fields), (
            f"{name}: documented {fields}, view {list(view.model_fields)}"
        )
