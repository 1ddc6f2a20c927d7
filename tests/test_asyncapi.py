"""docs/asyncapi.json cannot drift from the protocol: it is what the code generates, its topics are the
topic functions', its messages the parsers' kinds, its schemas accept every message the code writes and
name every field it writes, its QoS and retain flags are the ones docs/protocol.md gives."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
from hypothesis import given, settings
from test_protocol import commands, content_requests, delivery_events, statuses
from typer.testing import CliRunner

from speakerctl.cli.main import app
from speakerctl.protocol import asyncapi, limits, topics
from speakerctl.protocol.lifecycle import DeliveryState
from speakerctl.protocol.live import LiveEnd, LiveEvent, LiveStart, LiveState, LiveStop, live_topic
from speakerctl.protocol.management import Ack, Configure, Ping, Reboot, SetVolume
from speakerctl.protocol.messages import (
    COMMAND_KINDS,
    EVENT_KINDS,
    ZONE_KINDS,
    Command,
    ContentRef,
    ContentRequest,
    DeliveryEvent,
    Link,
    Play,
    Power,
    Priority,
    Reason,
    Status,
    Stop,
)
from speakerctl.protocol.schedule import PreemptPolicy
from speakerctl.protocol.topics import Channel

DOCS = Path(__file__).parent.parent / "docs"
DOC = asyncapi.document()
MESSAGES = DOC["components"]["messages"]
SHA = "ab" * 32
KEY = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
TS = 1_764_000_000_000


def _validator(name: str) -> jsonschema_rs.Draft202012Validator:
    return jsonschema_rs.Draft202012Validator(MESSAGES[name]["payload"])


def test_the_committed_document_is_the_generated_one() -> None:
    assert (DOCS / "asyncapi.json").read_text(encoding="utf-8") == asyncapi.dumps(DOC), (
        "regenerate it: speakerctl api asyncapi > docs/asyncapi.json"
    )
    result = CliRunner().invoke(app, ["api", "asyncapi"])
    assert result.exit_code == 0 and json.loads(result.output) == DOC


def test_every_topic_of_the_code_is_a_channel_with_the_same_address() -> None:
    made = {
        Channel.DEVICE_CMD: topics.device_cmd, Channel.ZONE_CMD: topics.zone_cmd,
        Channel.STATUS: topics.device_status, Channel.EVENTS: topics.device_events,
        Channel.CONTENT: topics.content, Channel.LIVE: live_topic,
    }  # fmt: skip
    assert set(made) == set(Channel) == set(DOC["channels"])
    for spec in asyncapi.CHANNELS:
        sample = SHA if spec.parameter == "sha256" else "st-an-my-01"
        address = DOC["channels"][spec.channel.value]["address"]
        assert address.replace("{" + spec.parameter + "}", sample) == made[spec.channel](sample)
        assert topics.parse(made[spec.channel](sample)).channel is spec.channel
    assert DOC["channels"]["status"]["address"].replace("{device}", "+") == topics.ALL_STATUS


def test_every_message_kind_of_the_code_is_a_message_and_no_other() -> None:
    def on(channel: Channel) -> set[str]:
        return set(DOC["channels"][channel.value]["messages"])

    assert on(Channel.DEVICE_CMD) == COMMAND_KINDS and on(Channel.ZONE_CMD) == ZONE_KINDS
    assert on(Channel.EVENTS) == EVENT_KINDS and on(Channel.STATUS) == {"status"}
    every = COMMAND_KINDS | EVENT_KINDS | {"status", asyncapi.CHUNK, asyncapi.LIVE_FRAME}
    assert set(MESSAGES) == every


def test_every_limit_is_in_the_document() -> None:
    constants = {n: getattr(limits, n) for n in vars(limits) if n.isupper()}
    written = DOC["info"]["x-limits"]
    assert set(written) == set(constants)
    for name, value in constants.items():
        expected = (
            value.decode() if isinstance(value, bytes) else list(value) if isinstance(value, tuple) else value
        )
        assert written[name] == expected, name


REF = ContentRef(SHA, 40_000, "opus", 60_000)
FULL_BODIES = [
    Play("bc-1", (REF,), TS, 80, "Bản tin", PreemptPolicy.RESUME), Stop("bc-1"), SetVolume(40), Reboot(),
    Ping(), Configure(("p", "c1")), LiveStart("live-1", KEY, title="Trực tiếp", source="mic"),
    LiveStop("live-1", 41),
]  # fmt: skip
FULL_EVENTS = [
    DeliveryEvent("e1", "st-1", TS, "bc-1", DeliveryState.FAILED, Reason.AMPLIFIER_FAULT, "amp", True, SHA),
    ContentRequest("e2", "st-1", TS, SHA, ((0, 3), (7, 7))),
    Ack("e3", "st-1", TS, "cmd-1", False, "busy"),
    LiveEvent("e4", "st-1", TS, "live-1", LiveState.ENDED, 10, 1, 2, 0, LiveEnd.STALLED, "quiet"),
]
FULL_STATUS = Status(
    "st-1", True, TS, "agent 1.2", "ipc-4g", 70, "bc-1", 3600, Link("4g", -70), Power("battery", 55), "ok",
    (SHA,), 1, 1, 2, 34.5, 900, -12, 3, ("live",),
)  # fmt: skip


def _keys(schema: dict[str, Any], wire: Any, where: str = "") -> None:
    """The wire's fields are the schema's properties, all the way down (a field the document lacks, or
    one the code never writes when everything is set, is drift)."""
    if isinstance(wire, dict) and "properties" in schema:
        assert set(wire) == set(schema["properties"]), where
        for key, value in wire.items():
            _keys(_branch(schema["properties"][key]), value, f"{where}.{key}")
    elif isinstance(wire, list) and wire and "items" in schema:
        _keys(_branch(schema["items"]), wire[0], f"{where}[]")


def _branch(schema: dict[str, Any]) -> dict[str, Any]:
    return next((s for s in schema.get("oneOf", []) if s.get("type") != "null"), schema)


@pytest.mark.parametrize("body", FULL_BODIES, ids=lambda b: b.kind)
def test_a_command_with_every_field_set_has_exactly_the_documented_fields(body: Any) -> None:
    wire = Command(
        "cmd-1", TS, TS + 60_000, Priority.EMERGENCY, body, "x" * 88, topics.device_cmd("st-1")
    ).to_wire()
    _validator(body.kind).validate(wire)
    _keys(MESSAGES[body.kind]["payload"], wire)


@pytest.mark.parametrize("event", [*FULL_EVENTS, FULL_STATUS], ids=lambda e: getattr(e, "kind", "status"))
def test_an_event_or_status_with_every_field_set_has_exactly_the_documented_fields(event: Any) -> None:
    name = getattr(event, "kind", "status")
    wire = event.to_wire()
    _validator(name).validate(wire)
    _keys(MESSAGES[name]["payload"], wire)


def test_the_documented_limits_refuse_what_the_code_refuses() -> None:
    play = Command("c", TS, TS + 1, Priority.NORMAL, Play("b", (REF,))).to_wire()
    too_many = play | {
        "body": play["body"] | {"content": [play["body"]["content"][0]] * (limits.MAX_VARIANTS + 1)}
    }
    assert not _validator("play").is_valid(too_many)
    status = Status("st-1", True, TS).to_wire()
    assert not _validator("status").is_valid(status | {"volume": limits.MAX_PERCENT + 1})
    assert not _validator("status").is_valid(status | {"firmware": "x" * (limits.MAX_TEXT_LENGTH + 1)})
    assert not _validator("status").is_valid(status | {"cached": [SHA] * (limits.MAX_CACHED_LISTED + 1)})
    assert _validator("status").is_valid({"v": 1, "device_id": "st-1", "online": False})  # the Last Will


@given(message=commands() | delivery_events() | content_requests | statuses)
@settings(max_examples=200, deadline=None)
def test_every_message_the_code_writes_is_valid_by_the_document(message: Any) -> None:
    wire = message.to_wire()
    name = wire.get("kind", "status")
    errors = [e.message for e in _validator(name).iter_errors(wire)]
    assert errors == [], (name, wire)


ROW = re.compile(r"^\| `(pa/v1/[^`]+)` \|.*\| (\d) \| (\*\*yes\*\*|no) \|$")


def test_qos_and_retain_are_the_ones_the_protocol_document_gives() -> None:
    text = (DOCS / "protocol.md").read_text(encoding="utf-8")
    table = {m[1]: (int(m[2]), m[3] != "no") for line in text.splitlines() if (m := ROW.match(line))}
    assert len(table) >= 5
    for spec in asyncapi.CHANNELS:
        address = spec.address.replace("{stream}", "{stream_id}")
        if address in table:
            assert table[address] == (spec.qos, spec.retain), address
    assert {s.channel for s in asyncapi.CHANNELS if s.address in table} >= set(Channel) - {Channel.LIVE}
    live = next(s for s in asyncapi.CHANNELS if s.channel is Channel.LIVE)
    assert live.qos == 0 and "QoS 0" in text
