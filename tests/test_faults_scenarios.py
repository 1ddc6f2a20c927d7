"""Scenario files and fault profiles: validated where they enter."""

from __future__ import annotations

import asyncio
import contextlib
import random

import pytest

from simulator import faults
from simulator.faults import FaultProfile, FaultyDownlink
from simulator.scenarios import Scenario, load_scenarios
from speakerctl.broker.link import Incoming
from speakerctl.protocol import chunks, topics


def test_packaged_scenarios_load_and_cover_the_faults() -> None:
    scenarios = {s.name: s for s in load_scenarios()}
    assert scenarios["chunk-loss-5%"].faults.chunk_loss == 0.05
    assert scenarios["3g-link"].faults.bandwidth_kbps == 384
    assert scenarios["broker-restart"].broker_restart_at_s > 0
    assert any(s.offline for s in scenarios.values()) and any(s.power_cut_playing for s in scenarios.values())
    assert any(s.clock_skew_ms for s in scenarios.values())


def test_a_bad_scenario_says_what_is_wrong() -> None:
    with pytest.raises(ValueError, match="unknown keys"):
        Scenario.from_toml('name = "x"\nchunk_los = 0.1\n')
    with pytest.raises(ValueError, match="probability"):
        Scenario.from_toml('name = "x"\n[faults]\nchunk_loss = 5\n')


async def test_faulty_downlink_drops_corrupts_and_delays_chunks_only() -> None:
    received: list[Incoming] = []

    async def inner(message: Incoming) -> None:
        received.append(message)

    link = FaultyDownlink(inner, FaultProfile(chunk_loss=0.5, corrupt_chunks=0.5), random.Random(1))
    frame = chunks.pack(0, 1, b"x" * 100)
    topic = topics.content("0" * 64)
    for _ in range(200):
        await link(Incoming(topic, frame, False))
    await link(Incoming(topics.device_cmd("st-a"), b"{}", False))
    assert 60 < link.dropped < 140 and link.corrupted > 20
    assert received[-1].payload == b"{}"  # commands are never dropped or corrupted
    assert len(received) == 200 - link.dropped + 1
    assert FaultProfile(latency_ms=100, bandwidth_kbps=384).delay_s(48_000) == pytest.approx(1.1)


async def test_a_cluster_that_will_not_power_off_fails_loudly_instead_of_hanging(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(faults, "CANCEL_ROUNDS", 2)
    stop = asyncio.Event()

    async def stubborn() -> None:
        while not stop.is_set():
            with contextlib.suppress(asyncio.CancelledError):  # what a swallowed cancel amounts to
                await stop.wait()

    task = asyncio.create_task(stubborn(), name="stubborn-cluster")
    await asyncio.sleep(0)  # started: a task cancelled before its first step never runs at all
    with pytest.raises(RuntimeError, match=r"stubborn-cluster waiting at .*test_faults_scenarios"):
        await faults._cancel([task])
    stop.set()
    await task
