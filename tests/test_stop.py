"""Stopping what is on air, on a real Mosquitto with simulated clusters: a broadcast everywhere, one
zone only, a user outside the zone refused, confirmation of wide and emergency broadcasts, and Ctrl-C
on a real `speakerctl broadcast` process."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio
from test_faults import random_bulletin
from typer.testing import CliRunner
from waiting import SAFETY_NET_S, Observed, wait_until

from simulator.faults import FleetRunner
from simulator.fleet import Fleet, FleetOptions
from speakerctl.app import broadcasts, stops
from speakerctl.app.access import Actor, Role, local_administrator
from speakerctl.app.context import open_store
from speakerctl.app.runtime import context, controller
from speakerctl.app.views import BroadcastResultView
from speakerctl.broker.mosquitto import MosquittoConfig, MosquittoProcess
from speakerctl.broker.ports import free_port
from speakerctl.cli.broadcast import outcome
from speakerctl.cli.main import app, exit_code
from speakerctl.config import Settings
from speakerctl.controller.session import Session
from speakerctl.errors import NeedsConfirmation, NotAllowed
from speakerctl.fleet import load_inventory, provisioning_records
from speakerctl.protocol.lifecycle import PLAYING, STOPPED
from speakerctl.security.keys import load_or_create_signer, trusted_path
from speakerctl.store import BroadcastState, Store

LONG_MS = 600_000
"""Ten minutes of sound: every test stops it long before it ends."""
PROCESS_S = 120.0


@dataclass
class World:
    """Mosquitto, the controller's settings and store, and the clusters of two communes, online."""

    settings: Settings
    store: Store
    fleet: Fleet
    communes: tuple[str, str]
    bulletin: int
    runner: FleetRunner

    def under(self, commune: str) -> list[str]:
        """The clusters of one commune."""
        return sorted(d.id for d in load_inventory().devices_under(commune))

    def playing(self, device_ids: Sequence[str]) -> dict[str, str | None]:
        """What each cluster's player is playing now (None: silent)."""
        current = {d: self.fleet.devices[d].agent.player.current for d in device_ids}
        return {d: job.play.broadcast_id if job else None for d, job in current.items()}


def _two_communes() -> tuple[str, str]:
    inventory = load_inventory()
    leaves = [z.id for z in inventory.zones if not inventory.children(z.id) and inventory.devices_under(z.id)]
    small = sorted(leaves, key=lambda z: (len(inventory.devices_under(z)), z))
    return small[0], small[1]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory, mosquitto_binary: str) -> AsyncIterator[World]:
    root = tmp_path_factory.mktemp("stop")
    with MosquittoProcess(
        MosquittoConfig(port=free_port()), root / "mosquitto", binary=mosquitto_binary
    ) as mq:
        settings = Settings(data_dir=root / "ctl", broker=mq.url, accept_window_s=1)
        load_or_create_signer(settings.keys_dir)
        communes = _two_communes()
        inside = {d.id for c in communes for d in load_inventory().devices_under(c)}
        clusters = tuple(c for c in provisioning_records(load_inventory()) if c.device_id in inside)
        options = FleetOptions(
            root=root / "fleet", trust_file=trusted_path(settings.keys_dir), repair_after_s=0.5
        )
        fleet = Fleet(clusters, settings.broker_address, options)
        store = open_store(settings)
        bulletin = random_bulletin(store, settings.content_dir, 4 * 16384, duration_ms=LONG_MS)
        async with FleetRunner() as runner:
            for device in fleet.devices.values():
                runner.start(device.agent)
            await fleet.wait_online(SAFETY_NET_S)
            yield World(settings, store, fleet, communes, bulletin, runner)


async def _on_air(world: World, targets: Sequence[str]) -> tuple[str, asyncio.Task[object]]:
    """Start a broadcast in this process and return once every targeted cluster is playing it."""
    ctx = context(world.settings)
    broadcast_id = broadcasts.new_id(ctx)
    total = sum(len(world.under(t)) for t in targets)
    seen: Observed[Counter[str]] = Observed()
    task = asyncio.create_task(
        broadcasts.broadcast(
            ctx,
            world.bulletin,
            targets,
            actor=local_administrator(),
            progress=lambda c, _: seen.add(Counter(c)),
            broadcast_id=broadcast_id,
        )
    )
    try:
        await seen.wait_for(
            lambda items: bool(items) and items[-1][PLAYING] == total, "every cluster playing"
        )
    except AssertionError:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        raise
    return broadcast_id, task


@pytest.mark.asyncio(loop_scope="module")
async def test_stop_silences_every_cluster_and_records_who_stopped_it(world: World) -> None:
    broadcast_id, follower = await _on_air(world, world.communes)
    clusters = world.under(world.communes[0]) + world.under(world.communes[1])
    ctx = context(world.settings)
    # Another controller stops it, as `serve` (the web console) would: the broadcasting one only sees
    # its clusters' reports and the store.
    async with controller(ctx, session=Session("stopper", persistent=False)).running() as running:
        view = await stops.stop(ctx, Actor("lan", Role.OPERATOR), broadcast_id, controller=running)
    assert (view.clusters, view.confirmed, view.unconfirmed, view.whole) == (
        len(clusters),
        len(clusters),
        [],
        True,
    )
    assert world.playing(clusters) == dict.fromkeys(clusters, None)
    result = await asyncio.wait_for(follower, SAFETY_NET_S)  # the broadcasting controller ends at once
    assert result.counts == {STOPPED.value: len(clusters)}  # type: ignore[attr-defined]
    info = world.store.broadcasts.get(broadcast_id)
    assert (info.state, info.stopped_by) == (BroadcastState.STOPPED, "lan")
    deliveries = world.store.deliveries.of(broadcast_id)
    assert {(d.state, d.detail) for d in deliveries} == {(STOPPED, "stopped by lan")}
    (audit,) = [
        e
        for e in world.store.audit.entries()
        if (e.action, e.subject) == ("stop", f"broadcast {broadcast_id}")
    ]
    assert (audit.actor, audit.outcome) == ("lan", "confirmed")


def _speakerctl(
    world: World, *args: str, stderr: int | None = subprocess.PIPE, lang: str = "en"
) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "speakerctl", "--data-dir", str(world.settings.data_dir)]
    return subprocess.Popen(
        [*cmd, "--broker", world.settings.broker, *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        env=os.environ | {"SPEAKERCTL_ACCEPT_WINDOW_S": "1", "SPEAKERCTL_LANG": lang, "COLUMNS": "100"},
    )


async def _finish(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    try:
        out, err = await asyncio.to_thread(process.communicate, timeout=PROCESS_S)
    except subprocess.TimeoutExpired:
        # Never leave it running: it would keep the module's clusters busy for the tests after this one.
        process.kill()
        out, err = await asyncio.to_thread(process.communicate)
        pytest.fail(f"speakerctl did not exit within {PROCESS_S} s; its stderr: {err[-2000:]}")
    return process.returncode, out, err or ""


async def _silence(world: World, broadcast_id: str, follower: asyncio.Task[object] | None = None) -> None:
    """Stop a broadcast a test left on air, so the next test starts with quiet clusters."""
    ctx = context(world.settings)
    async with controller(ctx, session=Session("cleaner", persistent=False)).running() as running:
        if world.store.broadcasts.get(broadcast_id).state is BroadcastState.RUNNING:
            await stops.stop(ctx, local_administrator(), broadcast_id, controller=running)
    if follower is not None:
        await asyncio.wait_for(follower, SAFETY_NET_S)


@pytest.mark.asyncio(loop_scope="module")
async def test_stop_zone_stops_that_zone_only_and_the_rest_keeps_playing(world: World) -> None:
    stopped, playing = world.communes
    broadcast_id, follower = await _on_air(world, world.communes)
    code, out, err = await _finish(_speakerctl(world, "stop", "--zone", stopped, "--json"))
    assert code == 0, err
    (view,) = json.loads(out)
    assert (view["broadcast"], view["zones"], view["whole"], view["state"]) == (
        broadcast_id,
        [stopped],
        False,
        "running",
    )
    assert view["confirmed"] == view["clusters"] == len(world.under(stopped))
    assert world.playing(world.under(stopped)) == dict.fromkeys(world.under(stopped), None)
    assert world.playing(world.under(playing)) == dict.fromkeys(world.under(playing), broadcast_id)
    states = {d.device_id: d.state for d in world.store.deliveries.of(broadcast_id)}
    assert {states[d] for d in world.under(stopped)} == {STOPPED}
    assert {states[d] for d in world.under(playing)} == {PLAYING}
    assert world.store.broadcasts.get(broadcast_id).state is BroadcastState.RUNNING
    await _silence(world, broadcast_id, follower)


@pytest.mark.asyncio(loop_scope="module")
async def test_a_user_outside_the_zone_may_not_stop_it(world: World) -> None:
    inside, outside = world.communes
    broadcast_id, follower = await _on_air(world, [inside])
    ctx, operator = context(world.settings), Actor("op", Role.OPERATOR, outside)
    for attempt in (stops.stop(ctx, operator, broadcast_id), stops.stop_zone(ctx, operator, [inside])):
        with pytest.raises(NotAllowed) as refused:
            await attempt
        assert exit_code(refused.value) == 9
    assert world.playing(world.under(inside)) == dict.fromkeys(world.under(inside), broadcast_id)
    assert world.store.audit.entries() == [
        e for e in world.store.audit.entries() if broadcast_id not in e.action
    ]
    await _silence(world, broadcast_id, follower)


@pytest.mark.asyncio(loop_scope="module")
async def test_a_stopped_broadcast_says_it_was_stopped_and_by_whom(world: World) -> None:
    clusters = world.under(world.communes[0]) + world.under(world.communes[1])
    targets = [a for c in world.communes for a in ("--to", c)]
    process = _speakerctl(world, "broadcast", str(world.bulletin), *targets, lang="vi")
    await wait_until(lambda: all(world.playing(clusters).values()), "every cluster playing", PROCESS_S)
    (broadcast_id,) = set(world.playing(clusters).values())
    assert broadcast_id is not None
    ctx = context(world.settings)
    async with controller(ctx, session=Session("stopper", persistent=False)).running() as running:
        await stops.stop(ctx, Actor("lan", Role.OPERATOR), broadcast_id, controller=running)
    code, out, err = await _finish(process)
    assert code == 3, err
    assert f"đã dừng={len(clusters)}" in err and "━" in err  # it aired: its progress bar was drawn
    line = " ".join(out.split())
    assert f"0/{len(clusters)} đã phát; lan đã dừng buổi phát; xem lý do: speakerctl report" in line
    assert f"speakerctl report {broadcast_id}" in line and "tất cả" not in line


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("stop_on_interrupt", [False, True], ids=["hint", "stop-on-interrupt"])
async def test_ctrl_c_during_broadcast(world: World, stop_on_interrupt: bool) -> None:
    clusters = world.under(world.communes[0]) + world.under(world.communes[1])
    flags = ["--stop-on-interrupt"] if stop_on_interrupt else []
    targets = [a for c in world.communes for a in ("--to", c)]
    process = _speakerctl(world, "broadcast", str(world.bulletin), *targets, "--json", *flags)
    await wait_until(lambda: all(world.playing(clusters).values()), "every cluster playing", PROCESS_S)
    (broadcast_id,) = set(world.playing(clusters).values())
    assert broadcast_id is not None
    process.send_signal(signal.SIGINT)
    code, _, err = await _finish(process)
    assert code == 130
    if stop_on_interrupt:
        assert world.playing(clusters) == dict.fromkeys(clusters, None)
        info = world.store.broadcasts.get(broadcast_id)
        assert (info.state, info.stopped_by) == (BroadcastState.STOPPED, "local-admin")
    else:
        assert f"speakerctl broadcast stop {broadcast_id}" in " ".join(err.split())
        assert world.playing(clusters) == dict.fromkeys(clusters, broadcast_id)
        await _silence(world, broadcast_id)


def test_wide_and_emergency_broadcasts_need_confirmation(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "ctl")
    store = open_store(settings)
    bulletin = random_bulletin(store, settings.content_dir, 1024)
    inventory = load_inventory()
    province, commune = inventory.root.id, _two_communes()[0]
    runner, base = CliRunner(), ["--data-dir", str(settings.data_dir)]
    for target, flags in ((province, []), (commune, ["--emergency"])):
        result = runner.invoke(app, [*base, "broadcast", str(bulletin), "--to", target, *flags])
        assert isinstance(result.exception, NeedsConfirmation), result.output
        assert exit_code(result.exception) == 10
    assert "--yes" in result.exception.hint
    assert store.broadcasts.latest() == []  # nothing was sent, nothing stored
    admin = local_administrator()
    wide = broadcasts.confirmation(context(settings), bulletin, [province], actor=admin)
    assert wide is not None and (wide.clusters, wide.province_wide) == (len(inventory.devices), True)
    assert wide.communes == len({d.zone for d in inventory.devices})
    assert broadcasts.confirmation(context(settings), bulletin, [commune], actor=admin) is None
    schedule = [*base, "schedule", "add", str(bulletin), "--to", province, "--daily", "05:00", "--json"]
    refused = runner.invoke(app, schedule)
    assert isinstance(refused.exception, NeedsConfirmation) and exit_code(refused.exception) == 10
    assert "Schedule for the whole province" in str(refused.exception)
    assert runner.invoke(app, [*schedule, "--yes"]).exit_code == 0


@pytest.mark.asyncio(loop_scope="module")
async def test_yes_confirms_a_province_wide_broadcast(world: World) -> None:
    short = random_bulletin(world.store, world.settings.content_dir, 1024, duration_ms=500)
    province = load_inventory().root.id
    process = _speakerctl(
        world, "broadcast", str(short), "--to", province, "--yes", "--timeout", "2", "--json"
    )
    code, out, err = await _finish(process)
    assert code == 3, err  # sent: our few clusters played it, the rest of the province is not simulated
    result = json.loads(out)
    assert result["played"] == len(world.fleet.devices) and result["total"] == len(load_inventory().devices)


def _on_terminal(world: World, terminal: int, *args: str) -> subprocess.Popen[str]:
    """`speakerctl` with its stdin and stderr on a terminal (a person at the keyboard), stdout piped."""
    cmd = [sys.executable, "-m", "speakerctl", "--data-dir", str(world.settings.data_dir)]
    return subprocess.Popen(
        [*cmd, "--broker", world.settings.broker, *args],
        stdin=terminal,
        stdout=subprocess.PIPE,
        stderr=terminal,
        text=True,
    )


def _read_until(fd: int, text: str, timeout: float = PROCESS_S) -> str:
    """What a terminal shows, read until `text` appears (the safety net fails the test)."""
    seen, deadline = b"", time.monotonic() + timeout
    while text.encode() not in seen:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        assert ready, f"timed out waiting for {text!r}; the terminal shows {seen.decode(errors='replace')!r}"
        seen += os.read(fd, 4096)
    return seen.decode(errors="replace")


@pytest.mark.asyncio(loop_scope="module")
async def test_ctrl_c_on_a_terminal_asks_and_stops_the_clusters_on_yes(world: World) -> None:
    clusters = world.under(world.communes[0])
    controller_side, terminal = pty.openpty()
    process = _on_terminal(
        world, terminal, "broadcast", str(world.bulletin), "--to", world.communes[0], "--json"
    )
    os.close(terminal)
    try:
        await wait_until(lambda: all(world.playing(clusters).values()), "every cluster playing", PROCESS_S)
        process.send_signal(signal.SIGINT)
        await asyncio.to_thread(_read_until, controller_side, "Stop the clusters too?")
        os.write(controller_side, b"y\n")
        code, out, _ = await _finish(process)
    finally:
        os.close(controller_side)
    assert code == 130
    assert "stopped bc-" in out and f"{len(clusters)}/{len(clusters)} clusters confirmed" in out
    assert world.playing(clusters) == dict.fromkeys(clusters, None)


@pytest.mark.asyncio(loop_scope="module")
async def test_a_silent_cluster_is_recorded_stopped_unconfirmed_and_the_broadcast_ends_at_once(
    world: World,
) -> None:
    """Last in the module: it powers a cluster off for good."""
    clusters = world.under(world.communes[1])
    broadcast_id, follower = await _on_air(world, [world.communes[1]])
    silent = clusters[0]
    await world.runner.power_cut([silent])
    ctx = context(world.settings)
    async with controller(ctx, session=Session("stopper", persistent=False)).running() as running:
        view = await stops.stop(ctx, Actor("lan", Role.OPERATOR), broadcast_id, wait_s=1, controller=running)
    assert (view.unconfirmed, view.confirmed, view.clusters) == ([silent], len(clusters) - 1, len(clusters))
    result = await asyncio.wait_for(follower, SAFETY_NET_S)  # read from the store, not timed out
    assert result.counts == {STOPPED.value: len(clusters)}  # type: ignore[attr-defined]
    details = {d.device_id: d.detail for d in world.store.deliveries.of(broadcast_id)}
    assert details[silent] == "stopped by lan; the cluster has not confirmed"
    assert details[clusters[1]] == "stopped by lan"
    (audit,) = [
        e
        for e in world.store.audit.entries()
        if (e.action, e.subject) == ("stop", f"broadcast {broadcast_id}")
    ]
    assert audit.outcome == "unconfirmed"


def test_the_summary_line_follows_the_outcome() -> None:
    def result(counts: dict[str, int], stopped_by: str | None = None) -> BroadcastResultView:
        played = counts.get("finished", 0)
        total = sum(counts.values())
        return BroadcastResultView(
            broadcast="bc-1",
            total=total,
            played=played,
            complete=played == total,
            counts=counts,
            reach_latency_s=0.01,
            stopped_by=stopped_by,
        )

    assert outcome(result({"finished": 2})) == ", all playing 0.01 s after the command"
    assert outcome(result({"stopped": 2}, "lan")) == "; stopped by lan; why: speakerctl report bc-1"
    partly = outcome(result({"stopped": 1, "finished": 1}))
    assert partly == "; stopped on 1 of 2 clusters; why: speakerctl report bc-1"
    missed = outcome(result({"unreached": 1, "finished": 2}))
    assert missed == "; 1 of 3 clusters did not play; why: speakerctl report bc-1"
