"""The delivery lifecycle is one rule, and the store and the tracker both follow it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from speakerctl.clock import FixedClock
from speakerctl.controller.tracker import Tracker
from speakerctl.errors import ProtocolError
from speakerctl.fleet import Zone, ZoneKind
from speakerctl.protocol import DeliveryEvent, Priority, Reason, codec
from speakerctl.protocol.lifecycle import (
    DEVICE_FINAL,
    FINAL,
    RANK,
    REPORTED,
    STOPPED_REASON,
    DeliveryState,
    supersedes,
)
from speakerctl.store import BroadcastState, DeliveryUpdate, DeviceSpec, StopOrder, Store

T0 = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
T0_MS = int(T0.timestamp() * 1000)
S = DeliveryState

# (reports after the controller's timeout verdict, the state the delivery must end in)
LATE_REPORTS = [
    ([S.PLAYING], S.UNREACHED),
    ([S.ACCEPTED, S.CONTENT_READY], S.UNREACHED),
    ([S.FINISHED], S.FINISHED),
    ([S.FAILED], S.FAILED),
    ([S.EXPIRED, S.FINISHED], S.EXPIRED),
    ([S.PLAYING, S.FINISHED, S.FAILED], S.FINISHED),
]


def _event(state: DeliveryState, at_s: int = 1) -> DeliveryEvent:
    reason = {S.FAILED: Reason.PLAYBACK_ERROR, S.EXPIRED: Reason.EXPIRED}.get(state)
    return DeliveryEvent(f"m{at_s}", "d1", T0_MS + at_s * 1000, "b1", state, reason)


def test_every_state_has_a_rank_and_the_sets_nest() -> None:
    assert set(RANK) == set(DeliveryState)
    assert DEVICE_FINAL < FINAL and DEVICE_FINAL < REPORTED
    assert S.PENDING not in REPORTED and S.UNREACHED not in REPORTED


@pytest.mark.parametrize("current", list(DeliveryState), ids=str)
@pytest.mark.parametrize("new", sorted(REPORTED), ids=str)
def test_final_is_sticky_except_unreached_yields_to_a_final_report(
    new: DeliveryState, current: DeliveryState
) -> None:
    if current in (S.UNREACHED, S.STOPPED):  # the controller's verdicts yield to the device's word
        expected = new in DEVICE_FINAL
    else:
        expected = current not in FINAL and RANK[new] > RANK[current]
    assert supersedes(new, current) is expected


def test_a_device_cannot_put_a_controller_state_on_the_wire() -> None:
    for state in (S.PENDING, S.UNREACHED):
        with pytest.raises(ProtocolError, match="cannot report"):
            _event(state)
    wire = codec.encode(_event(S.FINISHED)).replace(b'"finished"', b'"unreached"')
    with pytest.raises(ProtocolError, match="cannot report"):
        codec.decode_event(wire)


@pytest.mark.parametrize(("late", "final"), LATE_REPORTS)
def test_tracker_late_report_after_unreached(late: list[DeliveryState], final: DeliveryState) -> None:
    tracker = Tracker("b1", ["d1"], {"d1"}, FixedClock(datetime(2026, 1, 1, tzinfo=UTC)))
    tracker.mark_unreached()
    assert tracker.done.is_set() and tracker.devices["d1"].state is S.UNREACHED
    for at_s, state in enumerate(late, start=1):
        tracker.update(_event(state, at_s))
    assert tracker.devices["d1"].state is final
    assert tracker.open_devices() == []
    assert tracker.counts() == {final.value: 1}


@pytest.mark.parametrize(("late", "final"), LATE_REPORTS)
def test_store_late_report_after_unreached(
    db_url: str, late: list[DeliveryState], final: DeliveryState
) -> None:
    with Store.open(db_url) as store:
        store.zones.sync([Zone("c1", "Hòa Tú 1", ZoneKind.COMMUNE)])
        store.devices.sync([DeviceSpec("d1", "Ấp 1", "c1", "pa-4g")])
        bulletin = store.bulletins.add(
            title="t",
            sha256="ab" * 32,
            codec="opus",
            container="ogg",
            bitrate_kbps=24,
            duration_ms=1000,
            size=100,
            source_name="t.mp3",
            created_by="test",
            created_at=T0,
        )
        later = T0 + timedelta(hours=1)
        store.broadcasts.create("b1", bulletin.id, Priority.NORMAL, ["c1"], ["d1"], T0, T0, later)
        assert store.deliveries.mark_unreached("b1", at=T0) == 1
        for at_s, state in enumerate(late, start=1):
            store.deliveries.apply([DeliveryUpdate.from_event(_event(state, at_s))])
        [delivery] = store.deliveries.of("b1")
        assert delivery.state is final


def test_a_device_that_obeyed_a_stop_is_recorded_stopped_by_store_and_tracker() -> None:
    assert Reason.STOPPED.value == STOPPED_REASON
    report = DeliveryEvent("m1", "d1", T0_MS, "b1", S.FAILED, Reason.STOPPED)
    assert DeliveryUpdate.from_event(report).state is S.STOPPED
    other = DeliveryEvent("m2", "d1", T0_MS, "b1", S.FAILED, Reason.PLAYBACK_ERROR)
    assert DeliveryUpdate.from_event(other).state is S.FAILED
    tracker = Tracker("b1", ["d1"], {"d1"}, FixedClock(T0))
    assert tracker.update(report) and tracker.done.is_set() and tracker.stopped == 1
    assert supersedes(S.FINISHED, S.STOPPED) and not supersedes(S.PLAYING, S.STOPPED)


def test_store_records_a_stop_once_and_by_whom(db_url: str) -> None:
    with Store.open(db_url) as store:
        store.zones.sync([Zone("c1", "Hòa Tú 1", ZoneKind.COMMUNE)])
        store.devices.sync([DeviceSpec(d, d, "c1", "pa-4g") for d in ("d1", "d2", "d3")])
        bulletin = store.bulletins.add("t", "ab" * 32, "opus", "ogg", 24, 1000, 100, "t.mp3", "test", T0)
        later = T0 + timedelta(hours=1)
        store.broadcasts.create("b1", bulletin.id, Priority.NORMAL, ["c1"], ["d1", "d2", "d3"], T0, T0, later)
        store.deliveries.apply([DeliveryUpdate.from_event(_event(S.FINISHED))])  # d1 had played it
        order = StopOrder(("d2", "d3"), "lan", later, "stopped by lan", whole=True)
        stopped = store.broadcasts.stop("b1", order)
        assert (stopped.state, stopped.stopped_by, stopped.completed_at) == (
            BroadcastState.STOPPED,
            "lan",
            later,
        )
        states = {d.device_id: (d.state, d.detail) for d in store.deliveries.of("b1")}
        assert states == {"d1": (S.FINISHED, ""), "d2": (S.STOPPED, "stopped by lan"), "d3": states["d2"]}
        assert store.broadcasts.stop("b1", order) == stopped  # ended: unchanged
        assert store.deliveries.note_stopped("b1", ["d3"], "not confirmed") == 1
        assert store.deliveries.of("b1")[2].detail == "not confirmed"


def test_reach_latency_counts_from_the_play_stamp_not_from_the_tracker_set_up() -> None:
    clock = FixedClock(T0)
    tracker = Tracker("b1", ["d1", "d2"], {"d1", "d2"}, clock)
    clock.advance(timedelta(milliseconds=40))  # content read, uploads set up
    tracker.issued()
    clock.advance(timedelta(milliseconds=250))
    tracker.update(DeliveryEvent("m1", "d1", T0_MS, "b1", S.PLAYING))
    assert tracker.reach_latency_s is None  # d2 is not playing yet
    clock.advance(timedelta(milliseconds=50))
    tracker.update(DeliveryEvent("m2", "d2", T0_MS, "b1", S.PLAYING))
    assert tracker.reach_latency_s == pytest.approx(0.3)
