"""The cluster's side of scheduling: preemption policies, clock-offset correction of start times."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import pytest

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


async def _preempted(
    tmp_path: Path, policy: PreemptPolicy
) -> tuple[list[tuple[str, DeliveryState]], SimOutput]:
    events: list[tuple[str, DeliveryState]] = []
    output = SimOutput()
    player = Player(
        output, SimAmplifier(), SimClock(), lambda j, s, r, d: events.append((j.play.broadcast_id, s))
    )
    player.submit(_job(tmp_path, "routine", Priority.NORMAL, 600, policy))
    task = asyncio.create_task(player.run())
    await asyncio.sleep(0.3)
    player.submit(_job(tmp_path, "storm", Priority.EMERGENCY, 200, PreemptPolicy.DROP))
    await asyncio.sleep(1.0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    return events, output


async def test_resume_continues_where_it_was_cut(tmp_path: Path) -> None:
    events, output = await _preempted(tmp_path, PreemptPolicy.RESUME)
    assert [e for e in events if e[1] is not DeliveryState.PLAYING] == [
        ("storm", DeliveryState.FINISHED),
        ("routine", DeliveryState.FINISHED),
    ]
    assert len(output.started_ms) == 3
    # It resumed: the rest took about 0.3 s of its 0.6 s, not all of it again.
    assert output.started_ms[2] - output.started_ms[1] < 300


async def test_restart_plays_from_the_beginning_and_drop_reports_preempted(tmp_path: Path) -> None:
    events, output = await _preempted(tmp_path, PreemptPolicy.RESTART)
    assert ("routine", DeliveryState.FINISHED) in events and len(output.started_ms) == 3
    dropped, output = await _preempted(tmp_path, PreemptPolicy.DROP)
    assert ("routine", DeliveryState.FAILED) in dropped and output.played == ["storm"]


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
