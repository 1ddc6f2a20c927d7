"""Approval end to end on a real Mosquitto and a simulated fleet: submitted, approved, aired by clusters."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fleet_small import COMMUNE, OTHER, PROVINCE, THIRD, inventory, user

from simulator.fleet import Fleet, FleetOptions
from speakerctl.app import approvals, broadcasts
from speakerctl.app.access import Role
from speakerctl.app.bulletins import import_bulletin
from speakerctl.app.context import AppContext
from speakerctl.audio import generate_tone
from speakerctl.broker.mosquitto import MosquittoProcess
from speakerctl.clock import SystemClock
from speakerctl.config import Settings
from speakerctl.errors import AwaitsApproval
from speakerctl.fleet import load_inventory, provisioning_records
from speakerctl.security.keys import load_or_create_signer, trusted_path

OPERATOR = user(Role.OPERATOR, COMMUNE, "lan")
APPROVER = user(Role.APPROVER, COMMUNE, "hung")


@dataclass
class Rig:
    """The small fleet on a broker, and the controller's context."""

    ctx: AppContext
    fleet: Fleet
    bulletin_id: int


@pytest.fixture
async def rig(mosquitto: MosquittoProcess, tmp_path: Path) -> AsyncIterator[Rig]:
    """Six simulated clusters in three communes, online on a fresh Mosquitto."""
    path = inventory(tmp_path / "fleet.json")
    settings = Settings(
        data_dir=tmp_path / "controller",
        broker=str(mosquitto.url),
        inventory=str(path),
        accept_window_s=1.0,
        broadcast_timeout_s=30,
    )
    load_or_create_signer(settings.keys_dir)
    options = FleetOptions(root=tmp_path / "fleet", time_scale=20, trust_file=trusted_path(settings.keys_dir))
    fleet = Fleet(provisioning_records(load_inventory(path)), settings.broker_address, options)
    ctx = AppContext(settings, SystemClock())
    tone = generate_tone(1.5, path=tmp_path / "tin.wav")
    bulletin, _ = import_bulletin(ctx.store(), settings, ctx.clock, tone, "Thông báo của xã")
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(fleet.run())
        await fleet.wait_online(30)
        yield Rig(ctx, fleet, bulletin.id)
        task.cancel()


def _played(rig: Rig, zone: str) -> dict[str, int]:
    return {k: len(d.output.played) for k, d in rig.fleet.devices.items() if k.startswith(zone)}


async def test_submitted_then_approved_airs_on_the_communes_clusters_only(rig: Rig) -> None:
    ctx = rig.ctx
    with pytest.raises(AwaitsApproval) as held:
        await broadcasts.broadcast(ctx, rig.bulletin_id, [COMMUNE], actor=OPERATOR)
    assert all(len(d.output.played) == 0 for d in rig.fleet.devices.values())
    done = await approvals.approve(ctx, held.value.items[0], actor=APPROVER)
    assert done.broadcast is not None and done.broadcast.complete and done.broadcast.total == 2
    assert _played(rig, COMMUNE) == {f"{COMMUNE}-01": 1, f"{COMMUNE}-02": 1}
    assert sum(_played(rig, OTHER).values()) == 0
    stored = ctx.store().broadcasts.get(done.broadcast.broadcast)
    assert stored.approved_by == "hung"
    entry = ctx.store().audit.entries(actor="hung")
    assert [e.action for e in entry][:2] == ["broadcast", "approve"]


async def test_an_emergency_from_the_province_airs_at_once_and_is_noted_in_each_commune(rig: Rig) -> None:
    ctx = rig.ctx
    province = user(Role.OPERATOR, PROVINCE, "tinh-op")
    result = await broadcasts.broadcast(
        ctx, rig.bulletin_id, [PROVINCE], actor=province, emergency=True, confirmed=True
    )
    assert result.complete and result.total == 6
    assert all(len(d.output.played) == 1 for d in rig.fleet.devices.values())
    noted = approvals.queue(ctx, actor=APPROVER, decided=True)
    assert [(i.zone, i.state, i.result) for i in noted] == [(COMMUNE, "aired", result.broadcast)]
    assert {i.zone_id for i in ctx.store().approvals.all()} == {COMMUNE, OTHER, THIRD}
