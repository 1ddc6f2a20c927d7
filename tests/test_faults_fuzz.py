"""Fuzzed device payloads: the controller rejects and counts them, never raises, and keeps working."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from speakerctl.broker.link import Incoming
from speakerctl.clock import SystemClock
from speakerctl.controller.ingest import Ingestor
from speakerctl.protocol import Status, codec, topics
from speakerctl.store import Store

DEVICE = "st-tp-soc-trang-phuong-1-01"
GOOD_STATUS = Status(DEVICE, online=True, ts_ms=1_717_205_404_020, model="ipc-4g-30w").to_wire()
GOOD_EVENT: dict[str, Any] = {
    "v": 1,
    "kind": "delivery",
    "id": "8da0eb479ef4ab42",
    "device_id": DEVICE,
    "ts": 1717205400412,
    "broadcast_id": "bc-20240601-013000-d0dffd",
    "state": "accepted",
    "reason": None,
    "detail": "",
    "cached": False,
    "sha256": None,
}
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def _mutated(base: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """The valid message with one field replaced by an arbitrary JSON value, or removed."""
    keys = st.sampled_from(sorted(base))
    replaced = st.tuples(keys, json_values).map(lambda kv: base | {kv[0]: kv[1]})
    removed = keys.map(lambda k: {x: y for x, y in base.items() if x != k})
    return replaced | removed


payloads = (
    st.binary(max_size=300)
    | _mutated(GOOD_STATUS).map(lambda d: json.dumps(d).encode())
    | _mutated(GOOD_EVENT).map(lambda d: json.dumps(d).encode())
    | st.sampled_from([b"[" * 10_000, b"x" * 17_000, b'{"v":1e400}', b"\xed\xa0\x80", b"NaN"])
)
channels = st.sampled_from([topics.device_status(DEVICE), topics.device_events(DEVICE), "pa/v1/dev/x/y"])


def _ingestor(tmp: Path) -> Ingestor:
    store = Store.open(f"sqlite:///{tmp / 'fuzz.db'}")
    return Ingestor(store, SystemClock())


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.lists(st.tuples(channels, payloads), min_size=1, max_size=20))
async def test_fuzzed_device_payloads_are_counted_never_raised(
    tmp_path_factory: Any, batch: list[Any]
) -> None:
    ingestor = _ingestor(tmp_path_factory.mktemp("fuzz"))
    before = ingestor.counters.malformed
    accepted = 0
    for topic, payload in batch:
        await ingestor.handle(Incoming(topic, payload))
        accepted += _is_valid(topic, payload)
    counted = ingestor.counters
    assert counted.malformed - before + accepted == len(batch)
    # And it still works: a valid status is taken after the garbage.
    await ingestor.handle(Incoming(topics.device_status(DEVICE), codec.encode(Status.from_wire(GOOD_STATUS))))
    assert ingestor.counters.statuses == counted.statuses
    await ingestor.flush()
    ingestor.store.close()


def _is_valid(topic: str, payload: bytes) -> int:
    try:
        parsed = topics.parse(topic)
        if parsed.channel is topics.Channel.STATUS:
            return int(codec.decode_status(payload).device_id == DEVICE)
        return int(codec.decode_event(payload).device_id == DEVICE)
    except Exception:
        return 0


async def test_refused_commands_in_statuses_are_counted_by_the_controller(tmp_path: Path) -> None:
    ingestor = _ingestor(tmp_path)
    for refused in (0, 2, 2, 5):
        status = Status(DEVICE, online=True, ts_ms=1, rejected_commands=refused)
        await ingestor.handle(Incoming(topics.device_status(DEVICE), codec.encode(status)))
    assert ingestor.counters.refused_commands == 5
    assert ingestor.refusals[DEVICE] == 5
    ingestor.store.close()
