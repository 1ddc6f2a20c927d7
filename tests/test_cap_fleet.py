"""CAP 1.2 end to end on a real Mosquitto and the simulated small fleet: an emergency for an area airs
on exactly the clusters inside it, repeats until it expires, and its Cancel withdraws it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cap_docs import alert, circle_area, polygon_area, reference
from fleet_small import inventory
from waiting import wait_until

from simulator.fleet import Fleet, FleetOptions
from speakerctl.app import cap, reports
from speakerctl.app.context import AppContext
from speakerctl.app.runtime import running_controller
from speakerctl.clock import SystemClock
from speakerctl.config import Settings
from speakerctl.errors import NotFound
from speakerctl.fleet import load_inventory, provisioning_records
from speakerctl.security.keys import load_or_create_signer, trusted_path
from speakerctl.store import Store


def _playing(store: Store, broadcast: str) -> bool:
    """Whether a cluster plays the broadcast (not recorded yet: not yet)."""
    try:
        return any(d.state == "playing" for d in store.deliveries.of(broadcast))
    except NotFound:
        return False


INSIDE = {"c1-01", "c1-02", "c2-01", "c2-02"}


class SteppedClock:
    """The real time plus an offset the test moves on: repeats come due without waiting for them."""

    def __init__(self) -> None:
        self.offset = timedelta()
        self.start = datetime.now(UTC).replace(microsecond=0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def monotonic(self) -> float:
        return SystemClock().monotonic() + self.offset.total_seconds()

    def advance(self, delta: timedelta) -> None:
        self.offset += delta


@dataclass
class Rig:
    """The small fleet online, a running controller and the CAP desk on a stepped clock."""

    fleet: Fleet
    desk: cap.Desk
    clock: SteppedClock

    def played(self) -> dict[str, int]:
        return {k: len(d.output.played) for k, d in self.fleet.devices.items() if d.output.played}


@pytest.fixture
async def rig(mosquitto: object, tmp_path: Path) -> AsyncIterator[Rig]:
    path = inventory(tmp_path / "fleet.json")
    settings = Settings(
        data_dir=tmp_path / "controller",
        broker=str(mosquitto.url),  # type: ignore[attr-defined]
        inventory=str(path),
        accept_window_s=1.0,
        broadcast_timeout_s=60,
        cap_repeat_min=15,
    )
    load_or_create_signer(settings.keys_dir)
    options = FleetOptions(root=tmp_path / "fleet", time_scale=4, trust_file=trusted_path(settings.keys_dir))
    fleet = Fleet(provisioning_records(load_inventory(path)), settings.broker_address, options)
    clock = SteppedClock()
    ctx = AppContext(settings, clock)
    ctx.store().close()  # loads the inventory
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(fleet.run())
        await fleet.wait_online(30)
        async with (
            running_controller(AppContext(settings, SystemClock())) as controller,
            cap.Desk(ctx, controller).running() as desk,
        ):
            yield Rig(fleet, desk, clock)
        task.cancel()


async def test_an_emergency_airs_inside_its_polygon_repeats_until_expiry(rig: Rig) -> None:
    sent = rig.clock.start
    doc = alert("LQ-2026-001", sent, expires=sent + timedelta(minutes=40), area=polygon_area())
    view = await rig.desk.receive(doc, "test-feed")
    assert (view.state, view.priority, set(view.targets)) == ("airing", "emergency", INSIDE)
    await rig.desk.idle()
    assert rig.played() == dict.fromkeys(INSIDE, 1)
    for n in (2, 3):
        rig.clock.advance(timedelta(minutes=15))
        assert await rig.desk.tick() == 1
        await rig.desk.idle()
        assert rig.played() == dict.fromkeys(INSIDE, n)
    rig.clock.advance(timedelta(minutes=15))  # 45 min: past expiry
    assert await rig.desk.tick() == 0
    (stored,) = cap.list_alerts(rig.desk.ctx)
    assert stored.state == "expired" and len(stored.broadcasts) == 3
    ctx = rig.desk.ctx
    assert {reports.broadcast_report(ctx, b).view.cap for b in stored.broadcasts} == {"LQ-2026-001"}
    since = (sent - timedelta(days=1)).date().isoformat()
    plays = reports.play_log(ctx, since, None, None).views()
    assert len(plays) == 12 and {p.cap for p in plays} == {"LQ-2026-001"}
    assert (await rig.desk.receive(doc, "again")).duplicate


async def test_a_cancel_stops_what_is_on_air_and_ends_the_repeats(rig: Rig) -> None:
    sent = rig.clock.start
    doc = alert("LQ-2026-002", sent, expires=sent + timedelta(hours=2), area=circle_area())
    view = await rig.desk.receive(doc, "test-feed")
    assert set(view.targets) == {"c3-01", "c3-02"}
    store = rig.desk.store
    (broadcast,) = store.cap.airings(view.id)
    await wait_until(lambda: _playing(store, broadcast), "the alert on air")
    cancel = alert(
        "LQ-2026-002-huy",
        sent + timedelta(seconds=1),
        msg_type="Cancel",
        references=reference("LQ-2026-002", sent),
    )
    done = await rig.desk.receive(cancel, "test-feed")
    assert done.state == "applied"
    await rig.desk.idle()
    assert store.broadcasts.get(broadcast).state.value == "stopped"
    assert store.cap.get(view.id).state == "cancelled" and store.cap.get(view.id).next_air_at is None
    rig.clock.advance(timedelta(minutes=15))
    assert await rig.desk.tick() == 0
    assert all(len(d.output.played) == 0 for d in rig.fleet.devices.values())
