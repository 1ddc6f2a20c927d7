"""The cluster's side of scheduling: preemption policies, clock-offset correction of start times."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from pathlib import Path

import pytest
from waiting import Observed

from devices.player import Job, Player
from devices.schedule import OffsetEstimator
from simulator.hardware import SimAmplifier, SimClock, SimOutput
from speakerctl.errors import ProtocolError
from speakerctl.protocol import Command, ContentRef, DeliveryState, Play, PreemptPolicy, Priority, Reason


def _job(tmp_path: Path, name: str, priority: Priority, ms: int, policy: PreemptPolicy) -> Job:
    data = name.encode()
    path = tmp_path / f"{name}.bin"
    path.write_bytes(data)
    ref = ContentRef(hashlib.sha256(data).hexdigest(), len(data), "opus", ms)
    now = SimClock().now_ms()
    play = Play(name, (ref,), on_preempt=policy)
    return Job(Command(f"m-{name}", now, now + 60_000, priority, play), play, ref, path)


class SteppedClock:
    """The device's clock, moved by the test: how far the routine got before it was cut is exact."""

    def __init__(self) -> None:
        self.ms = SimClock().now_ms()

    def now_ms(self) -> int:
        """The pinned time."""
        return self.ms


CUT_AT_MS = 300
"""How far into the 600 ms routine bulletin the emergency cuts it."""

Seen = tuple[str, DeliveryState, int]
"""(broadcast, state, position in the content when the player emitted it)."""


async def _preempted(tmp_path: Path, policy: PreemptPolicy) -> tuple[list[Seen], SimOutput]:
    seen: Observed[Seen] = Observed()
    output, clock = SimOutput(), SteppedClock()
    player = Player(
        output, SimAmplifier(), clock, lambda j, s, r, d: seen.add((j.play.broadcast_id, s, j.position_ms))
    )
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(player.run())
        player.submit(_job(tmp_path, "routine", Priority.NORMAL, 600, policy))
        await seen.wait_for(lambda events: len(events) == 1, "the routine to play")
        clock.ms += CUT_AT_MS
        player.submit(_job(tmp_path, "storm", Priority.EMERGENCY, 200, PreemptPolicy.DROP))
        await seen.wait_for(lambda events: _final(events, "routine") and _final(events, "storm"), "both ends")
        task.cancel()
    return seen.items, output


def _final(events: Sequence[Seen], broadcast_id: str) -> bool:
    return any(b == broadcast_id and s in FINAL_STATES for b, s, _ in events)


FINAL_STATES = (DeliveryState.FINISHED, DeliveryState.FAILED)


def _states(events: list[Seen]) -> list[tuple[str, DeliveryState]]:
    return [(b, s) for b, s, _ in events]


async def test_resume_continues_where_it_was_cut(tmp_path: Path) -> None:
    events, output = await _preempted(tmp_path, PreemptPolicy.RESUME)
    assert [e for e in _states(events) if e[1] is not DeliveryState.PLAYING] == [
        ("storm", DeliveryState.FINISHED),
        ("routine", DeliveryState.FINISHED),
    ]
    assert len(output.started_ms) == 3
    # It resumed: the second time it plays from where the emergency cut it, not from the start.
    assert [p for b, s, p in events if b == "routine" and s is DeliveryState.PLAYING] == [0, CUT_AT_MS]


async def test_restart_plays_from_the_beginning_and_drop_reports_preempted(tmp_path: Path) -> None:
    events, output = await _preempted(tmp_path, PreemptPolicy.RESTART)
    assert ("routine", DeliveryState.FINISHED) in _states(events) and len(output.started_ms) == 3
    assert [p for b, s, p in events if b == "routine" and s is DeliveryState.PLAYING] == [0, 0]
    dropped, output = await _preempted(tmp_path, PreemptPolicy.DROP)
    assert ("routine", DeliveryState.FAILED) in _states(dropped) and output.played == ["storm"]


def test_policy_travels_on_the_wire_and_is_validated() -> None:
    ref = ContentRef("a" * 64, 10, "opus", 1000)
    play = Play("bc-1", (ref,), start_at_ms=5, on_preempt=PreemptPolicy.RESTART)
    assert play.to_wire()["on_preempt"] == "restart"
    assert Play.from_wire(play.to_wire()) == play
    assert "on_preempt" not in Play("bc-1", (ref,)).to_wire()  # the default (drop) is not sent
    with pytest.raises(ProtocolError, match="on_preempt"):
        Play.from_wire(play.to_wire() | {"on_preempt": "later"})
    assert Reason.PREEMPTED.value == "preempted"


def test_offset_is_the_smallest_delay_seen_and_ignores_commands_that_waited() -> None:
    est = OffsetEstimator()
    assert est.to_device(1000) == 1000
    est.sample(issued_at_ms=10_000, received_ms=12_530)  # clock 2.5 s ahead, 30 ms in transit
    est.sample(issued_at_ms=20_000, received_ms=22_510)  # 10 ms in transit
    est.sample(issued_at_ms=30_000, received_ms=30_000 + 2 * 3_600_000)  # queued for two hours
    assert est.offset_ms == 2510
    assert est.to_device(100_000) == 102_510
