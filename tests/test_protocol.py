"""Protocol v1, property-based: round trips, chunk framing, topics, and hostile input that must not crash."""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import random
import struct
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from speakerctl.errors import PayloadTooLarge, ProtocolError
from speakerctl.protocol import (
    Command,
    ContentRef,
    ContentRequest,
    DeliveryEvent,
    DeliveryState,
    Link,
    Play,
    Power,
    Priority,
    Reason,
    Status,
    Stop,
    chunks,
    codec,
    lifecycle,
    topics,
)
from speakerctl.protocol.limits import (
    CHUNK_HEADER_SIZE,
    CHUNK_MAGIC,
    CHUNK_SIZE,
    MAX_CACHED_LISTED,
    MAX_CHUNK_PAYLOAD,
    MAX_CHUNKS,
    MAX_CONTENT_SIZE,
    MAX_ID_LENGTH,
    MAX_JSON_PAYLOAD,
    MAX_MISSING_RANGES,
    MAX_TEXT_LENGTH,
    MAX_TIMESTAMP_MS,
    MAX_VARIANTS,
    TOPIC_ROOT,
)
from speakerctl.protocol.messages import AMPLIFIER_STATES, NETWORKS, POWER_SOURCES

MODEST = settings(max_examples=200, deadline=None)
Decoder = Callable[[bytes], object]
DECODERS: tuple[Decoder, ...] = (codec.decode_command, codec.decode_event, codec.decode_status)


def _only_protocol_errors(decode: Callable[[bytes], object], payload: bytes) -> None:
    """Decode, allowing ProtocolError (and its subclasses) and nothing else to escape."""
    with contextlib.suppress(ProtocolError):
        decode(payload)


def _decoder_for(message: object) -> Decoder:
    """The decoder for the topic a message travels on."""
    if isinstance(message, Command):
        return codec.decode_command
    if isinstance(message, Status):
        return codec.decode_status
    return codec.decode_event


# -- strategies of valid values ------------------------------------------------------------------

VIETNAMESE = (
    "Thông báo khẩn cấp",
    "Bão số 3 đổ bộ, bà con di dời đến nơi an toàn",
    "Lịch tiêm chủng mở rộng tháng 6",
    "Ấp Hòa Tú 1, xã Đại Tâm, huyện Mỹ Xuyên",
    "Nước sông Hậu dâng cao, không đánh bắt cá",
)
VIETNAMESE_LETTERS = (
    "aăâbcdđeêghiklmnoôơpqrstuưvxy àằầèềìòồờùừỳ áắấéếíóốớúứý ảẳẩẻểỉỏổởủửỷ ãẵẫẽễĩõỗỡũữỹ ạặậẹệịọộợụựỵ"
)

IDS = st.from_regex(r"[a-z0-9][a-z0-9_-]{0,63}", fullmatch=True)
TOKENS = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}", fullmatch=True)
SHAS = st.binary(max_size=64).map(lambda b: hashlib.sha256(b).hexdigest())
TEXT = st.one_of(
    st.sampled_from(VIETNAMESE),
    st.text(VIETNAMESE_LETTERS, max_size=MAX_TEXT_LENGTH),
    st.text(st.characters(codec="utf-8", exclude_categories=("Cc",)), max_size=MAX_TEXT_LENGTH),
)
MS = st.integers(min_value=0, max_value=MAX_TIMESTAMP_MS // 2)
PERCENT = st.integers(0, 100)

content_refs = st.builds(
    ContentRef,
    sha256=SHAS,
    size=st.integers(1, MAX_CONTENT_SIZE),
    codec=TOKENS,
    duration_ms=st.integers(0, 24 * 3600 * 1000),
)
plays = st.builds(
    Play,
    broadcast_id=TOKENS,
    variants=st.lists(content_refs, min_size=1, max_size=MAX_VARIANTS, unique_by=lambda r: r.codec).map(
        tuple
    ),
    start_at_ms=st.none() | MS,
    volume=st.none() | PERCENT,
    title=TEXT,
)
stops = st.builds(Stop, broadcast_id=TOKENS)
signatures = st.none() | st.from_regex(r"[A-Za-z0-9+/]{86}==", fullmatch=True)


@st.composite
def commands(draw: st.DrawFn, bodies: st.SearchStrategy[Play | Stop] = plays | stops) -> Command:
    """A valid command envelope around a play or stop body."""
    issued = draw(MS)
    return Command(
        msg_id=draw(TOKENS),
        issued_at_ms=issued,
        expires_at_ms=issued + draw(st.integers(1, 2**40)),
        priority=draw(st.sampled_from(Priority)),
        body=draw(bodies),
        signature=draw(signatures),
    )


@st.composite
def delivery_events(draw: st.DrawFn) -> DeliveryEvent:
    """A valid delivery event; failed and expired always carry a reason."""
    state = draw(st.sampled_from(sorted(lifecycle.REPORTED)))
    needs_reason = state in (DeliveryState.FAILED, DeliveryState.EXPIRED)
    reasons = st.sampled_from(Reason)
    return DeliveryEvent(
        msg_id=draw(TOKENS),
        device_id=draw(IDS),
        ts_ms=draw(MS),
        broadcast_id=draw(TOKENS),
        state=state,
        reason=draw(reasons if needs_reason else st.none() | reasons),
        detail=draw(TEXT),
        cached=draw(st.booleans()),
        sha256=draw(st.none() | SHAS),
    )


RANGES = st.tuples(st.integers(0, MAX_CHUNKS - 1), st.integers(0, MAX_CHUNKS)).map(
    lambda r: (r[0], min(r[0] + r[1], MAX_CHUNKS - 1))
)
content_requests = st.builds(
    ContentRequest,
    msg_id=TOKENS,
    device_id=IDS,
    ts_ms=MS,
    sha256=SHAS,
    missing=st.lists(RANGES, min_size=1, max_size=MAX_MISSING_RANGES).map(tuple),
)
statuses = st.builds(
    Status,
    device_id=IDS,
    online=st.booleans(),
    ts_ms=MS,
    firmware=TEXT,
    model=TEXT,
    volume=PERCENT,
    playing=st.none() | TOKENS,
    uptime_s=st.integers(0, 2**31 - 1),
    link=st.builds(Link, network=st.sampled_from(NETWORKS), rssi_dbm=st.none() | st.integers(-150, 0)),
    power=st.builds(Power, source=st.sampled_from(POWER_SOURCES), battery_pct=st.none() | PERCENT),
    amplifier=st.sampled_from(AMPLIFIER_STATES),
    cached=st.lists(SHAS, max_size=MAX_CACHED_LISTED).map(tuple),
    cached_count=st.integers(0, 2**31 - 1),
    protocol=st.integers(1, 1000),
)

VIETNAMESE_COMMAND = Command(
    "f51e9914810c2941",
    1_717_205_400_000,
    1_717_209_000_000,
    Priority.EMERGENCY,
    Play(
        "bc-20240601-013000-d0dffd",
        (ContentRef(hashlib.sha256(b"bao so 3").hexdigest(), 184_000, "opus", 92_000),),
        volume=90,
        title="Khẩn cấp: bão số 3 đổ bộ, bà con xã Đại Tâm di dời đến nơi an toàn",
    ),
)

# -- round trips ---------------------------------------------------------------------------------


@MODEST
@given(commands(plays))
@example(VIETNAMESE_COMMAND)
def test_play_command_round_trips(command: Command) -> None:
    assert codec.decode_command(codec.encode(command)) == command


@MODEST
@given(commands(stops))
def test_stop_command_round_trips(command: Command) -> None:
    assert codec.decode_command(codec.encode(command)) == command


@MODEST
@given(delivery_events())
def test_delivery_event_round_trips(event: DeliveryEvent) -> None:
    assert codec.decode_event(codec.encode(event)) == event


@MODEST
@given(content_requests)
def test_content_request_round_trips(request: ContentRequest) -> None:
    assert codec.decode_event(codec.encode(request)) == request


@MODEST
@given(statuses)
def test_status_round_trips(status: Status) -> None:
    assert codec.decode_status(codec.encode(status)) == status


def test_vietnamese_travels_as_plain_utf8() -> None:
    payload = codec.encode(VIETNAMESE_COMMAND)
    assert "bão số 3 đổ bộ".encode() in payload
    assert b"\\u" not in payload
    assert payload == json.dumps(json.loads(payload), ensure_ascii=False, separators=(",", ":")).encode()


@MODEST
@given(st.one_of(commands(), delivery_events(), content_requests, statuses), st.data())
def test_unknown_fields_are_ignored(message: Any, data: st.DataObject) -> None:
    wire = message.to_wire()
    wire[data.draw(st.from_regex(r"x_[a-z]{1,8}", fullmatch=True))] = data.draw(st.none() | TEXT)
    decode = _decoder_for(message)
    assert decode(json.dumps(wire).encode()) == message


@MODEST
@given(commands(), signatures)
def test_signing_bytes_are_canonical_and_ignore_sig(command: Command, sig: str | None) -> None:
    signed = codec.signing_bytes(command)
    assert signed == codec.signing_bytes(replace(command, signature=sig))
    decoded = json.loads(signed)
    assert decoded == {k: v for k, v in command.to_wire().items() if k != "sig"}
    assert signed == json.dumps(decoded, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()


# -- chunk frames --------------------------------------------------------------------------------


@st.composite
def chunk_positions(draw: st.DrawFn) -> tuple[int, int]:
    """A valid (index, total) pair."""
    total = draw(st.integers(1, MAX_CHUNKS))
    return draw(st.integers(0, total - 1)), total


CHUNK_DATA = st.binary(min_size=1, max_size=CHUNK_SIZE)
CONTENT = st.one_of(
    st.binary(max_size=300),
    st.builds(lambda n, rnd: rnd.randbytes(n), st.integers(0, 4 * CHUNK_SIZE + 1), st.randoms()),
)


@MODEST
@given(chunk_positions(), CHUNK_DATA)
@example((MAX_CHUNKS - 1, MAX_CHUNKS), b"\xff" * CHUNK_SIZE)
def test_chunk_frame_round_trips(position: tuple[int, int], data: bytes) -> None:
    index, total = position
    frame = chunks.pack(index, total, data)
    assert len(frame) == CHUNK_HEADER_SIZE + len(data) <= MAX_CHUNK_PAYLOAD
    assert frame[:4] == CHUNK_MAGIC
    assert struct.unpack(">II", frame[4:12]) == (index, total)
    assert frame[12:44] == hashlib.sha256(data).digest()
    assert chunks.unpack(frame) == chunks.Chunk(index, total, data)


@MODEST
@given(CONTENT, st.randoms(use_true_random=False))
@example(b"x" * CHUNK_SIZE, random.Random(0))
@example(b"y" * (2 * CHUNK_SIZE + 1), random.Random(0))
def test_split_and_reassemble_in_any_order(content: bytes, rnd: random.Random) -> None:
    parsed = [chunks.unpack(frame) for frame in chunks.split(content)]
    total = chunks.chunk_count(len(content))
    assert [c.index for c in parsed] == list(range(total))
    assert all(c.total == total for c in parsed)
    assert all(len(c.data) == CHUNK_SIZE for c in parsed[:-1])
    rnd.shuffle(parsed)
    buffer = bytearray(len(content))
    for c in parsed:
        buffer[c.index * CHUNK_SIZE : c.index * CHUNK_SIZE + len(c.data)] = c.data
    assert hashlib.sha256(buffer).digest() == hashlib.sha256(content).digest()


@MODEST
@given(CONTENT, st.sets(st.integers(-5, 5 * MAX_CHUNKS)))
def test_frames_sends_exactly_the_requested_chunks(content: bytes, indices: set[int]) -> None:
    total = chunks.chunk_count(len(content))
    sent = [chunks.unpack(frame) for frame in chunks.frames(content, indices)]
    assert [c.index for c in sent] == sorted(i for i in indices if 0 <= i < total)
    for c in sent:
        assert c.data == content[c.index * CHUNK_SIZE : (c.index + 1) * CHUNK_SIZE]


@MODEST
@given(st.integers(1, MAX_CHUNKS))
def test_chunk_count_matches_content_ref(chunk_total: int) -> None:
    size = chunk_total * CHUNK_SIZE
    for s in (size - CHUNK_SIZE + 1, size):
        assert chunks.chunk_count(s) == ContentRef("0" * 64, s, "opus", 0).chunks == chunk_total


@MODEST
@given(st.sets(st.integers(0, MAX_CHUNKS - 1), max_size=400))
def test_to_ranges_and_from_ranges_are_inverse(indices: set[int]) -> None:
    ranges = chunks.to_ranges(indices)
    assert chunks.from_ranges(ranges) == indices
    assert chunks.to_ranges(chunks.from_ranges(ranges)) == ranges
    assert all(lo <= hi for lo, hi in ranges)
    assert all(prev[1] + 1 < nxt[0] for prev, nxt in itertools.pairwise(ranges))


@MODEST
@given(st.lists(RANGES, max_size=20))
def test_to_ranges_normalises_overlapping_ranges(ranges: list[tuple[int, int]]) -> None:
    assert chunks.from_ranges(chunks.to_ranges(chunks.from_ranges(ranges))) == chunks.from_ranges(ranges)


@MODEST
@given(st.sets(st.integers(0, MAX_CHUNKS - 1), min_size=1, max_size=400), IDS, SHAS)
def test_a_device_can_always_request_what_it_misses(missing: set[int], device: str, sha: str) -> None:
    # What the agent sends: the first MAX_MISSING_RANGES ranges of its missing indices.
    ranges = tuple(chunks.to_ranges(missing)[:MAX_MISSING_RANGES])
    request = ContentRequest("r1", device, 0, sha, ranges)
    decoded = codec.decode_event(codec.encode(request))
    assert isinstance(decoded, ContentRequest)
    assert chunks.from_ranges(decoded.missing) <= missing


@MODEST
@given(chunk_positions(), st.binary(min_size=1, max_size=2048), st.data())
def test_a_flipped_byte_fails_the_checksum(position: tuple[int, int], data: bytes, d: st.DataObject) -> None:
    frame = bytearray(chunks.pack(*position, data))
    at = d.draw(st.integers(12, len(frame) - 1), label="flipped offset")  # digest or data
    frame[at] ^= d.draw(st.integers(1, 255), label="xor mask")
    with pytest.raises(ProtocolError, match="checksum"):
        chunks.unpack(bytes(frame))


@MODEST
@given(chunk_positions(), st.binary(min_size=1, max_size=256), st.integers(0, 11), st.integers(1, 255))
def test_a_flipped_header_byte_is_rejected_or_leaves_the_data_intact(
    position: tuple[int, int], data: bytes, at: int, mask: int
) -> None:
    # The chunk digest covers the data only; a corrupted index is caught by the whole-content hash.
    frame = bytearray(chunks.pack(*position, data))
    frame[at] ^= mask
    try:
        chunk = chunks.unpack(bytes(frame))
    except ProtocolError:
        return
    assert at >= 4 and chunk.data == data


@pytest.mark.parametrize(
    "frame",
    [
        b"",
        CHUNK_MAGIC,
        chunks.pack(0, 1, b"x")[:CHUNK_HEADER_SIZE],  # header without data
        chunks.pack(0, 1, b"x" * CHUNK_SIZE) + b"x",  # one byte too long
        b"PAC2" + chunks.pack(0, 1, b"x")[4:],
        struct.pack(">4sII32s", CHUNK_MAGIC, 1, 1, hashlib.sha256(b"x").digest()) + b"x",  # index == total
        struct.pack(">4sII32s", CHUNK_MAGIC, 0, MAX_CHUNKS + 1, hashlib.sha256(b"x").digest()) + b"x",
    ],
    ids=["empty", "magic-only", "no-data", "too-long", "bad-magic", "index-eq-total", "too-many-chunks"],
)
def test_malformed_chunk_frames_are_rejected(frame: bytes) -> None:
    with pytest.raises(ProtocolError):
        chunks.unpack(frame)


@pytest.mark.parametrize(
    ("index", "total", "data"),
    [
        (0, 0, b"x"),
        (1, 1, b"x"),
        (-1, 1, b"x"),
        (0, MAX_CHUNKS + 1, b"x"),
        (0, 1, b""),
        (0, 1, b"x" * (CHUNK_SIZE + 1)),
    ],
)
def test_pack_refuses_impossible_chunks(index: int, total: int, data: bytes) -> None:
    with pytest.raises(ProtocolError):
        chunks.pack(index, total, data)


# -- topics --------------------------------------------------------------------------------------


@MODEST
@given(IDS, IDS, SHAS)
def test_topics_parse_what_they_build(device: str, zone: str, sha: str) -> None:
    built = [
        (topics.device_cmd(device), topics.Channel.DEVICE_CMD, device),
        (topics.device_status(device), topics.Channel.STATUS, device),
        (topics.device_events(device), topics.Channel.EVENTS, device),
        (topics.zone_cmd(zone), topics.Channel.ZONE_CMD, zone),
        (topics.content(sha), topics.Channel.CONTENT, sha),
    ]
    for topic, channel, key in built:
        assert topic.startswith(f"{TOPIC_ROOT}/")
        assert topics.parse(topic) == topics.ParsedTopic(channel, key)


def _rebuild(parsed: topics.ParsedTopic) -> str:
    builders: dict[topics.Channel, Callable[[str], str]] = {
        topics.Channel.DEVICE_CMD: topics.device_cmd,
        topics.Channel.STATUS: topics.device_status,
        topics.Channel.EVENTS: topics.device_events,
        topics.Channel.ZONE_CMD: topics.zone_cmd,
        topics.Channel.CONTENT: topics.content,
    }
    return builders[parsed.channel](parsed.key)


TOPIC_PARTS = st.sampled_from(
    ["pa", "v1", "v2", "dev", "zone", "content", "cmd", "status", "evt", "+", "#", ""]
)
TOPIC_PARTS |= IDS | SHAS | st.text(max_size=10)


@MODEST
@given(st.lists(TOPIC_PARTS, max_size=6).map("/".join) | st.text(max_size=100))
def test_parse_accepts_only_topics_of_the_tree(topic: str) -> None:
    try:
        parsed = topics.parse(topic)
    except ProtocolError:
        return
    assert _rebuild(parsed) == topic


@pytest.mark.parametrize(
    "topic",
    [
        "",
        "pa/v1",
        "pa/v2/dev/d1/cmd",
        "PA/v1/dev/d1/cmd",
        "/pa/v1/dev/d1/cmd",
        "pa/v1/dev/d1/cmd/",
        "pa/v1/dev/d1",
        "pa/v1/dev/d1/log",
        "pa/v1/dev/D1/status",
        "pa/v1/dev/+/status",
        "pa/v1/dev/#",
        "pa/v1/dev//evt",
        "pa/v1/dev/-d1/evt",
        "pa/v1/dev/đại-tâm/evt",
        f"pa/v1/dev/{'a' * (MAX_ID_LENGTH + 1)}/evt",
        "pa/v1/zone/z1/status",
        "pa/v1/zone/z1",
        "pa/v1/content/" + "A" * 64,
        "pa/v1/content/" + "a" * 63,
        "pa/v1/content/" + "a" * 64 + "/x",
    ],
)
def test_parse_rejects_topics_outside_the_tree(topic: str) -> None:
    with pytest.raises(ProtocolError):
        topics.parse(topic)


@MODEST
@given(IDS | st.text(max_size=MAX_ID_LENGTH + 5).filter(lambda s: not s.endswith("\n")))
def test_check_id_accepts_exactly_the_documented_syntax(value: str) -> None:
    # Trailing newlines: see test_ids_and_hashes_reject_a_trailing_newline.
    if len(value) <= MAX_ID_LENGTH and _is_id(value):
        assert topics.check_id(value) == value
    else:
        with pytest.raises(ProtocolError):
            topics.check_id(value)


def _is_id(value: str) -> bool:
    allowed = set("abcdefghijklmnopqrstuvwxyz0123456789-_")
    return bool(value) and value[0] not in "-_" and set(value) <= allowed


# -- hostile input -------------------------------------------------------------------------------


json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=20),
    st.sampled_from([2**64, -(2**63) - 1, 10**30, 1e308, -0.0, "\ud800", "x" * 300]),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=25,
)
PROTOCOL_KEYS = st.sampled_from(
    ["v", "kind", "id", "issued_at", "expires_at", "priority", "sig", "body", "broadcast_id", "content",
     "device_id", "ts", "state", "reason", "sha256", "missing", "online", "link", "power", "cached"]
)  # fmt: skip
near_misses = st.fixed_dictionaries(
    {
        "v": st.just(1) | json_scalars,
        "kind": st.sampled_from(["play", "stop", "delivery", "content_request"]),
    },
    optional={"body": st.dictionaries(PROTOCOL_KEYS, json_values, max_size=6)},
).flatmap(lambda base: st.dictionaries(PROTOCOL_KEYS, json_values, max_size=10).map(lambda d: {**d, **base}))


@MODEST
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_raise_only_protocol_errors(payload: bytes) -> None:
    for decode in (*DECODERS, chunks.unpack):
        _only_protocol_errors(decode, payload)


@MODEST
@given(st.one_of(json_values, near_misses))
def test_arbitrary_json_raises_only_protocol_errors(value: object) -> None:
    payload = json.dumps(value).encode()
    for decode in DECODERS:
        _only_protocol_errors(decode, payload)


@MODEST
@given(
    st.binary(max_size=200).map(lambda b: CHUNK_MAGIC + b)
    | st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1), st.binary(max_size=200)).map(
        lambda t: struct.pack(">4sII", CHUNK_MAGIC, t[0], t[1]) + t[2]
    )
)
def test_near_miss_chunk_frames_raise_only_protocol_errors(frame: bytes) -> None:
    _only_protocol_errors(chunks.unpack, frame)


JsonPath = tuple[str | int, ...]
_DROP = object()
MUTATIONS = st.one_of(
    st.just(_DROP),
    json_values,
    st.sampled_from([True, False, None, 0, -1, 2**63, -(2**64), 10**30, 1e308, 0.5, "", [], {}, [1, 2]]),
)
valid_messages = st.one_of(commands(), delivery_events(), content_requests, statuses)


def _paths(value: Any, prefix: JsonPath = ()) -> Iterator[JsonPath]:
    """Every key and index path inside a JSON value."""
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in items:
        yield (*prefix, key)
        yield from _paths(child, (*prefix, key))


def _get(value: Any, path: JsonPath) -> Any:
    for key in path:
        value = value[key]
    return value


def _mutate(wire: dict[str, Any], path: JsonPath, new: object) -> dict[str, Any]:
    copy: dict[str, Any] = json.loads(json.dumps(wire))
    parent = _get(copy, path[:-1])
    if new is _DROP:
        del parent[path[-1]]
    else:
        parent[path[-1]] = new
    return copy


@MODEST
@given(valid_messages, st.data())
def test_mutated_payloads_raise_only_protocol_errors(message: Any, data: st.DataObject) -> None:
    wire = message.to_wire()
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        path = data.draw(st.sampled_from(list(_paths(wire))), label="path")
        wire = _mutate(wire, path, data.draw(MUTATIONS, label="new value"))
        if not list(_paths(wire)):
            break
    _only_protocol_errors(_decoder_for(message), json.dumps(wire).encode())


@MODEST
@given(valid_messages, st.data())
def test_bools_and_floats_are_not_integers(message: Any, data: st.DataObject) -> None:
    wire = message.to_wire()
    # `v`: see test_version_must_be_the_integer_1.
    ints = [p for p in _paths(wire) if type(_get(wire, p)) is int and p != ("v",)]
    path = data.draw(st.sampled_from(ints), label="path")
    wrong = data.draw(st.sampled_from([True, False, float(_get(wire, path)), str(_get(wire, path))]))
    with pytest.raises(ProtocolError):
        _decoder_for(message)(json.dumps(_mutate(wire, path, wrong)).encode())


@MODEST
@given(valid_messages, st.data())
def test_strings_of_the_wrong_type_are_rejected(message: Any, data: st.DataObject) -> None:
    wire = message.to_wire()
    texts = [p for p in _paths(wire) if isinstance(_get(wire, p), str)]
    path = data.draw(st.sampled_from(texts), label="path")
    wrong = data.draw(st.sampled_from([0, 1, -1, True, [], {}, [_get(wire, path)]]), label="new value")
    with pytest.raises(ProtocolError):
        _decoder_for(message)(json.dumps(_mutate(wire, path, wrong)).encode())


@MODEST
@given(valid_messages, st.data())
def test_a_missing_required_field_is_rejected(message: Any, data: st.DataObject) -> None:
    wire = message.to_wire()
    required = {
        Command: ["v", "kind", "id", "issued_at", "expires_at", "priority", "body"],
        DeliveryEvent: ["v", "kind", "id", "device_id", "ts", "broadcast_id", "state"],
        ContentRequest: ["v", "kind", "id", "device_id", "ts", "sha256", "missing"],
        Status: ["v", "device_id", "online"],
    }[type(message)]
    key = data.draw(st.sampled_from(required), label="dropped")
    with pytest.raises(ProtocolError):
        _decoder_for(message)(json.dumps(_mutate(wire, (key,), _DROP)).encode())


@pytest.mark.parametrize(
    "payload",
    [
        b"[" * 5000 + b"]" * 5000,
        b'{"v":' * 2500 + b"1" + b"}" * 2500,
        b'{"v":' + b"9" * 5000 + b"}",
        b'{"v":1,"kind":"play","id":"m","issued_at":1e999,"expires_at":NaN}',
        b'{"v":1,"device_id":"d1","online":true,"volume":-Infinity}',
        b'\xef\xbb\xbf{"v":1}',
        b'{"v":1,"device_id":"d1","online":true,"cached":["\\u0000"]}',
        b'"\\ud800"',
        b"\xff\xfe\x00",
        b"\x00" * 100,
    ],
    ids=[
        "deep-array",
        "deep-object",
        "huge-int",
        "inf-nan",
        "neg-inf",
        "bom",
        "nul",
        "surrogate",
        "utf16",
        "nuls",
    ],
)
def test_nasty_json_raises_only_protocol_errors(payload: bytes) -> None:
    assert len(payload) <= MAX_JSON_PAYLOAD
    for decode in DECODERS:
        _only_protocol_errors(decode, payload)


@MODEST
@given(valid_messages, st.integers(1, 4096))
def test_oversized_payloads_are_payload_too_large(message: Any, extra: int) -> None:
    payload = codec.encode(message)
    padded = payload + b" " * (MAX_JSON_PAYLOAD - len(payload))
    assert _decoder_for(message)(padded) == message  # exactly at the limit is fine
    with pytest.raises(PayloadTooLarge):
        _decoder_for(message)(padded + b" " * extra)


@pytest.mark.parametrize("decode", DECODERS)
def test_oversized_garbage_is_payload_too_large(decode: Decoder) -> None:
    with pytest.raises(PayloadTooLarge):
        decode(b"\xff" * (MAX_JSON_PAYLOAD + 1))


class _Huge:
    def to_wire(self) -> dict[str, Any]:
        return {"v": 1, "padding": "đ" * MAX_JSON_PAYLOAD}


def test_encode_refuses_oversized_messages() -> None:
    with pytest.raises(PayloadTooLarge):
        codec.encode(_Huge())


# -- contracts that once were bugs (found by this suite, fixed in the protocol code)


@pytest.mark.parametrize(
    "check",
    [
        lambda: topics.check_id("st-01\n"),
        lambda: topics.check_sha256(hashlib.sha256(b"").hexdigest() + "\n"),
        lambda: topics.parse("pa/v1/dev/st-01\n/status"),
        lambda: Stop("bc-1\n"),
    ],
    ids=["device-id", "sha256", "topic", "token"],
)
def test_ids_and_hashes_reject_a_trailing_newline(check: Callable[[], object]) -> None:
    with pytest.raises(ProtocolError):
        check()


@pytest.mark.parametrize("version", [True, 1.0])
def test_version_must_be_the_integer_1(version: object) -> None:
    wire = VIETNAMESE_COMMAND.to_wire() | {"v": version}
    with pytest.raises(ProtocolError):
        codec.decode_command(json.dumps(wire).encode())


def test_unpaired_surrogates_are_rejected_when_decoding() -> None:
    wire = VIETNAMESE_COMMAND.to_wire()
    wire["body"]["title"] = "\ud800"
    with pytest.raises(ProtocolError):
        codec.decode_command(json.dumps(wire).encode())  # json.dumps escapes it as \ud800
