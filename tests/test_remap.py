"""The 2025 map: the shipped mapping and inventory agree and cite their sources; the remap plan is pure."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from speakerctl.app import zones as zones_app
from speakerctl.app.access import Actor, Role, local_administrator
from speakerctl.app.context import AppContext, open_store
from speakerctl.cli.main import app
from speakerctl.clock import SystemClock
from speakerctl.config import Settings
from speakerctl.errors import InventoryError, NotAllowed, StoreError
from speakerctl.fleet import Zone, ZoneKind, load_inventory
from speakerctl.fleet.remap import load_mapping, mapping_from_dict, plan_remap
from speakerctl.protocol import Command, Configure, Priority, codec, topics
from speakerctl.protocol.limits import MAX_ZONE_CHAIN
from speakerctl.store.approvals import ItemKind, ItemState, NewItem

MAPPING = "soc_trang_to_can_tho_2025"
MAPPING_FILE = Path(__file__).resolve().parent.parent / "devices" / "remaps" / f"{MAPPING}.json"


def _raw() -> dict[str, object]:
    data: dict[str, object] = json.loads(MAPPING_FILE.read_text(encoding="utf-8"))
    return data


def test_every_old_zone_with_clusters_is_mapped_or_marked() -> None:
    old, mapping = load_inventory("soc_trang"), load_mapping(MAPPING)
    by_source = {m.source: m for m in mapping.moves}
    with_clusters = {d.zone for d in old.devices}
    assert with_clusters <= by_source.keys(), sorted(with_clusters - by_source.keys())
    for zone in with_clusters:
        move = by_source[zone]
        assert move.target is not None or move.reason, zone
    determined = sum(by_source[d.zone].target is not None for d in old.devices)
    assert (determined, len(old.devices)) == (279, 279)


def test_the_new_inventory_places_each_cluster_where_the_mapping_says() -> None:
    old, new, mapping = load_inventory("soc_trang"), load_inventory("can_tho_2025"), load_mapping(MAPPING)
    target = {m.source: m.target for m in mapping.moves}
    assert [d.id for d in new.devices] == [d.id for d in old.devices]
    assert all(new.device(d.id).zone == target[d.zone] for d in old.devices)
    assert new.root.id == "can-tho" and new.root.kind is ZoneKind.CITY
    kinds = Counter(z.kind for z in new.zones if z.parent is not None)
    assert kinds == {ZoneKind.WARD: 8, ZoneKind.COMMUNE: 35}  # Sóc Trăng's 43 units (8 wards, 35 communes)
    assert all(new.tree.depth(z.id) <= 1 for z in new.zones)  # two levels: no districts any more


def test_every_move_cites_sources_the_file_lists() -> None:
    raw = _raw()
    cited = {s["id"] for s in raw["sources"]}  # type: ignore[attr-defined]
    assert "nq1668-list" in cited
    for move in raw["moves"]:  # type: ignore[attr-defined]
        assert move.get("undetermined") or set(move["sources"]) <= cited, move


def test_a_move_without_sources_is_refused() -> None:
    raw = _raw()
    raw["moves"] = [{"from": "st-ke-sach-an-my", "to": "ct-nhon-my"}]
    with pytest.raises(InventoryError, match="must name its sources"):
        mapping_from_dict(raw)


def test_a_move_to_a_zone_the_mapping_lacks_is_refused() -> None:
    raw = _raw()
    raw["moves"] = [{"from": "st-ke-sach-an-my", "to": "ct-nowhere", "sources": ["nq1668-list"]}]
    with pytest.raises(InventoryError, match="not a zone of the mapping"):
        mapping_from_dict(raw)


def test_the_plan_moves_everyone_and_retires_the_old_tree() -> None:
    old = load_inventory("soc_trang")
    plan = plan_remap(load_mapping(MAPPING), old.zones, {d.id: d.zone for d in old.devices})
    assert len(plan.moved) == 279 and not plan.kept
    assert len(plan.added) == 44 and set(plan.retired) == {z.id for z in old.zones}
    assert plan.chains["st-ke-sach-an-my-01"] == ("can-tho", "ct-nhon-my")
    # A district has no single successor: it becomes the new units its communes went to.
    assert plan.retarget(["soc-trang", "st-ke-sach-an-my", "st-ke-sach-an-my-01"]) == (
        "can-tho",
        "ct-nhon-my",
        "st-ke-sach-an-my-01",
    )
    assert set(plan.retarget(["st-ke-sach"])) == {
        "ct-ke-sach", "ct-an-lac-thon", "ct-thoi-an-hoi", "ct-nhon-my", "ct-dai-hai", "ct-phong-nam",
    }  # fmt: skip


def test_an_undetermined_zone_keeps_its_clusters_and_its_ancestors() -> None:
    raw = _raw()
    moves = [m for m in raw["moves"] if m["from"] != "st-ke-sach-an-my"]  # type: ignore[attr-defined]
    raw["moves"] = [*moves, {"from": "st-ke-sach-an-my", "undetermined": True, "reason": "split, no list"}]
    mapping = mapping_from_dict(raw)
    old = load_inventory("soc_trang")
    plan = plan_remap(mapping, old.zones, {d.id: d.zone for d in old.devices})
    assert set(plan.kept) == {"st-ke-sach-an-my-01", "st-ke-sach-an-my-02"}
    assert len(plan.moved) == 277
    assert {"st-ke-sach-an-my", "st-ke-sach", "soc-trang"}.isdisjoint(plan.retired)
    assert "st-long-phu" in plan.retired


def test_a_plan_for_a_map_already_applied_is_refused() -> None:
    new = load_inventory("can_tho_2025")
    with pytest.raises(InventoryError, match="moves none of the zones in use"):
        plan_remap(load_mapping(MAPPING), new.zones, {d.id: d.zone for d in new.devices})


def test_configure_round_trips_and_is_bounded() -> None:
    command = Command("5e1f2a9c0b7d4e36", 1, 2, Priority.NORMAL, Configure(("can-tho", "ct-ke-sach")))
    assert codec.decode_command(codec.encode(command)) == command
    for zones in ((), tuple(f"z{i}" for i in range(MAX_ZONE_CHAIN + 1)), ("a", "a"), ("Bad",)):
        with pytest.raises(Exception, match="zone"):
            Configure(zones)
    with pytest.raises(Exception, match="never sent to a zone"):
        Command("x1", 1, 2, Priority.NORMAL, Configure(("a",)), to=topics.zone_cmd("a"))


def test_mapping_zones_are_zone_records() -> None:
    mapping = load_mapping(MAPPING)
    assert mapping.zones[0] == Zone("can-tho", "Cần Thơ", ZoneKind.CITY, None)


def test_zones_remap_is_a_dry_run_unless_told(tmp_path: Path) -> None:
    runner, base = CliRunner(), ["--data-dir", str(tmp_path)]
    shown = runner.invoke(app, [*base, "zones", "remap", MAPPING])
    assert shown.exit_code == 0, shown.output
    assert "279 clusters move, 44 zones added, 121 retired" in shown.output and "dry run" in shown.output
    as_json = runner.invoke(app, [*base, "zones", "remap", MAPPING, "--json"])
    data = json.loads(as_json.output)
    assert (data["applied"], data["moved"], data["configure"]) == (False, 279, [])
    listed = json.loads(runner.invoke(app, [*base, "zones", "list", "--json"]).output)
    assert {z["id"] for z in listed} == {z.id for z in load_inventory("soc_trang").zones}  # nothing written
    unknown = runner.invoke(app, [*base, "zones", "remap", "no_such_map"])
    assert isinstance(unknown.exception, InventoryError) and "no packaged mapping" in str(unknown.exception)


def test_a_commune_operator_may_not_remap(tmp_path: Path) -> None:
    store = open_store(Settings(data_dir=tmp_path))
    operator = Actor("chi-lan", Role.OPERATOR, "st-ke-sach-an-my")
    with pytest.raises(NotAllowed):
        zones_app.plan(store, MAPPING, operator)
    province_admin = Actor("anh-tuan", Role.ADMINISTRATOR, "st-ke-sach")
    with pytest.raises(NotAllowed, match="acts on st-ke-sach only"):
        zones_app.plan(store, MAPPING, province_admin)


def test_a_remap_that_fails_half_way_stores_nothing(tmp_path: Path) -> None:
    ctx = AppContext(Settings(data_dir=tmp_path), SystemClock())
    store = ctx.store()
    planned = zones_app.plan(store, MAPPING, local_administrator())
    change = zones_app.change(planned, local_administrator(), ctx)
    moves = dict(change.moves)
    moves["st-ke-sach-an-my-01"] = ("st-long-phu-long-phu", "ct-nhon-my")  # not where the plan found it
    with pytest.raises(StoreError, match="the fleet changed meanwhile"):
        store.remaps.apply(replace(change, moves=moves))
    assert [z.id for z in store.zones.active()] == [z.id for z in load_inventory("soc_trang").zones]
    assert (
        store.zones.retired() == {} and store.devices.get("st-ke-sach-an-my-01").zone_id == "st-ke-sach-an-my"
    )
    assert not store.audit.entries()


def test_pending_approvals_follow_the_remap_and_decided_ones_keep_their_history(tmp_path: Path) -> None:
    ctx = AppContext(Settings(data_dir=tmp_path), SystemClock())
    store = ctx.store()
    now = ctx.clock.now()
    store.bulletins.add("Lịch tiêm phòng", "ab" * 32, "opus", "ogg", 24, 61_000, 183_000, "t.mp3", "x", now)

    def item(zone: str, targets: tuple[str, ...], state: ItemState = ItemState.PENDING) -> NewItem:
        return NewItem(ItemKind.BROADCAST, 1, zone, targets, int(Priority.NORMAL), "lan", now, state=state)

    commune, district, decided = store.approvals.add(
        [
            item("st-ke-sach-ke-an", ("st-ke-sach-ke-an", "st-ke-sach-an-my-01")),
            item("st-ke-sach", ("st-ke-sach",)),
            item("st-ke-sach-ke-an", ("st-ke-sach-ke-an",), ItemState.AIRED),
        ]
    )
    planned = zones_app.plan(store, MAPPING, local_administrator())
    store.remaps.apply(zones_app.change(planned, local_administrator(), ctx))
    moved = store.approvals.get(commune.id)
    assert (moved.zone_id, moved.targets) == ("ct-ke-sach", ("ct-ke-sach", "st-ke-sach-an-my-01"))
    spread = store.approvals.get(district.id)  # Kế Sách district's communes went to several new ones
    assert spread.zone_id == "can-tho" and len(spread.targets) > 1
    assert all(t.startswith("ct-") for t in spread.targets)
    assert store.approvals.get(decided.id).zone_id == "st-ke-sach-ke-an"  # history as it was
