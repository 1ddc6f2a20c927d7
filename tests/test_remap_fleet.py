"""`zones remap` on the simulated fleet with a real Mosquitto: the old district of Kế Sách moves to 2025."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from test_faults import random_bulletin, trusted_fleet
from waiting import wait_until

from simulator.faults import FleetRunner
from speakerctl.app import zones as zones_app
from speakerctl.app.access import local_administrator
from speakerctl.app.context import AppContext, open_store
from speakerctl.broker.mosquitto import MosquittoProcess
from speakerctl.clock import SystemClock
from speakerctl.config import Settings
from speakerctl.controller.reconfigure import announced_minor
from speakerctl.controller.reports import outcome_by_zone
from speakerctl.controller.service import BroadcastRequest, Controller
from speakerctl.errors import NotFound
from speakerctl.fleet import load_inventory
from speakerctl.protocol.limits import PROTOCOL_MINOR
from speakerctl.store import ScheduleRecord

DISTRICT = "st-ke-sach"
OLD_TOWN = "st-ke-sach-tt-ke-sach"
NEW_COMMUNE = "ct-ke-sach"  # Kế Sách township + Kế An + Kế Thành (NQ 1668, item 75)
MAPPING = "soc_trang_to_can_tho_2025"
OLD_FIRMWARE = "st-ke-sach-an-my-01"  # announces v1.1: needs reprovisioning, keeps working
REBOOTED = "st-ke-sach-ke-an-01"
OFFLINE = "st-ke-sach-ba-trinh-01"  # off during the remap: its broker session keeps the configure


def _district_inventory(path: Path) -> Path:
    """The Sóc Trăng inventory with only the clusters of the old district of Kế Sách (32)."""
    source = Path(__file__).resolve().parent.parent / "devices" / "inventories" / "soc_trang.json"
    data = json.loads(source.read_text(encoding="utf-8"))
    under = {d.id for d in load_inventory().devices_under(DISTRICT)}
    data["devices"] = [d for d in data["devices"] if d["id"] in under]
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


async def test_remap_moves_the_clusters_and_they_hear_their_new_commune(
    tmp_path: Path, mosquitto: MosquittoProcess
) -> None:
    settings = Settings(
        data_dir=tmp_path / "ctl",
        broker=mosquitto.url,
        inventory=str(_district_inventory(tmp_path / "ke_sach.json")),
        accept_window_s=1,
        broadcast_timeout_s=20,
    )
    ctx, actor = AppContext(settings, SystemClock()), local_administrator()
    store = open_store(settings)
    fleet = trusted_fleet(settings, tmp_path / "fleet", DISTRICT)
    old = fleet.devices[OLD_FIRMWARE].agent
    old.config = replace(old.config, protocol_minor=1)
    bulletin = random_bulletin(store, settings.content_dir, 2 * 16384)
    schedule = ScheduleRecord("sch-1", bulletin, (DISTRICT,), {}, 1, "resume", 900, False, "Thời sự", 1, None)
    store.schedules.add(schedule)
    controller = Controller(settings, store)
    async with FleetRunner() as runner:
        for device in fleet.devices.values():
            runner.start(device.agent)
        await fleet.wait_online(30)

        async with controller.running():
            before = await controller.broadcast(BroadcastRequest(bulletin, (OLD_TOWN,)))
            with pytest.raises(NotFound):  # the new commune does not exist yet
                await controller.broadcast(BroadcastRequest(bulletin, (NEW_COMMUNE,)))
            await wait_until(
                lambda: all(announced_minor(store, d) is not None for d in fleet.devices), "statuses"
            )
        assert announced_minor(store, OLD_FIRMWARE) == 1
        assert announced_minor(store, REBOOTED) == PROTOCOL_MINOR

        dry = await zones_app.remap(ctx, MAPPING, actor)
        assert not dry.applied and dry.moved == len(fleet.devices) == 32 and not dry.configure
        assert len(store.zones.active()) == len(load_inventory().zones)  # the dry run wrote nothing
        with pytest.raises(NotFound):
            store.zones.get(NEW_COMMUNE)
        assert {d.zone_id for d in store.devices.all()} == {d.identity.zone for d in fleet.devices.values()}

        await runner.power_cut([OFFLINE])
        applied = await zones_app.remap(ctx, MAPPING, actor, apply=True, wait_s=20)

        assert applied.applied and applied.moved == 32
        assert applied.acknowledged == 30 and applied.needs_reprovisioning == 1
        assert [c.device for c in applied.configure if c.outcome == "pending"] == [OFFLINE]
        [refused] = [c for c in applied.configure if c.outcome == "needs_reprovisioning"]
        assert refused.device == OLD_FIRMWARE and "1.1" in refused.detail
        new_zone = {d.id: d.zone_id for d in store.devices.all()}
        in_commune = sorted(d for d, z in new_zone.items() if z == NEW_COMMUNE)
        assert len(in_commune) == 8 and REBOOTED in in_commune
        assert all(fleet.devices[d].agent.zones == ("can-tho", NEW_COMMUNE) for d in in_commune)
        assert set(store.schedules.get("sch-1").targets) == {
            "ct-an-lac-thon", "ct-ke-sach", "ct-thoi-an-hoi", "ct-nhon-my", "ct-dai-hai", "ct-phong-nam",
        }  # fmt: skip
        assert store.schedules.get("sch-1").revision == 2
        assert DISTRICT not in {z.id for z in store.zones.active()}
        assert any(e.action == "remap" and e.actor == actor.name for e in store.audit.entries(REBOOTED))

        returned = fleet.rebuild(OFFLINE)  # back on its provisioned chain, with the configure queued
        assert returned.agent.zones == ("soc-trang", DISTRICT, "st-ke-sach-ba-trinh")
        runner.start(returned.agent)
        await wait_until(lambda: returned.agent.zones == ("can-tho", "ct-dai-hai"), "the queued configure")

        await runner.power_cut([REBOOTED])  # power cycle: the new chain comes from its storage
        rebooted = fleet.rebuild(REBOOTED)
        runner.start(rebooted.agent)
        assert rebooted.agent.zones == ("can-tho", NEW_COMMUNE)
        await rebooted.agent.link.wait_connected(30)

        async with Controller(settings, store).running() as second:
            after = await second.broadcast(BroadcastRequest(bulletin, (NEW_COMMUNE,)))
            with pytest.raises(NotFound, match="retired"):
                await controller.broadcast(BroadcastRequest(bulletin, (OLD_TOWN,)))

    assert after.counts == {"finished": 8}, after.counts
    played = {d: len(x.output.played) for d, x in fleet.devices.items()}
    town = {d.id for d in load_inventory().devices_under(OLD_TOWN)}
    expected = {d: (d in town) + (d in in_commune) for d in fleet.devices}
    expected[REBOOTED] = 1  # its player is new since the reboot
    assert played == expected  # the new commune's clusters and no other
    # Reports keep each airing where it was: before the remap in the old district, after it in 2025.
    assert [o.zone_id for o in outcome_by_zone(store, before.broadcast_id)] == [DISTRICT]
    assert [o.zone_id for o in outcome_by_zone(store, before.broadcast_id, level=2)] == [OLD_TOWN]
    assert [o.zone_id for o in outcome_by_zone(store, after.broadcast_id)] == [NEW_COMMUNE]
