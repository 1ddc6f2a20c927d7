"""Fleet inventories and hardware profiles: the Sóc Trăng fleet, tree queries, validation."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import unicodedata
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from devices.inventory import (
    DeviceSpec,
    HardwareProfile,
    Inventory,
    Network,
    Zone,
    ZoneKind,
    available_inventories,
    inventory_from_dict,
    load_inventory,
    load_profiles,
)
from speakerctl.errors import InventoryError

Doc = dict[str, Any]
ROOT = "soc-trang"
PACKAGED = Path(__file__).resolve().parents[1] / "devices" / "inventories" / "soc_trang.json"

DISTRICT_LEVEL = {
    "st-tp-soc-trang": ("Sóc Trăng", "city"),
    "st-vinh-chau": ("Vĩnh Châu", "town"),
    "st-nga-nam": ("Ngã Năm", "town"),
    "st-chau-thanh": ("Châu Thành", "district"),
    "st-cu-lao-dung": ("Cù Lao Dung", "district"),
    "st-ke-sach": ("Kế Sách", "district"),
    "st-long-phu": ("Long Phú", "district"),
    "st-my-tu": ("Mỹ Tú", "district"),
    "st-my-xuyen": ("Mỹ Xuyên", "district"),
    "st-thanh-tri": ("Thạnh Trị", "district"),
    "st-tran-de": ("Trần Đề", "district"),
}


@pytest.fixture(scope="module")
def fleet() -> Inventory:
    return load_inventory()


# --- the packaged Sóc Trăng inventory ------------------------------------------------------


def test_packaged_inventory_loads(fleet: Inventory) -> None:
    assert (fleet.name, fleet.timezone) == ("Sóc Trăng", "Asia/Ho_Chi_Minh")
    assert fleet.root == Zone(ROOT, "Sóc Trăng", ZoneKind.PROVINCE, None)
    assert len(fleet.devices) == 279
    assert "soc_trang" in available_inventories()


def test_eleven_district_level_units(fleet: Inventory) -> None:
    found = {z.id: (z.name, z.kind.value) for z in fleet.children(ROOT)}
    assert found == DISTRICT_LEVEL


def test_commune_level_units(fleet: Inventory) -> None:
    communes = [z for d in fleet.children(ROOT) for z in fleet.children(d.id)]
    assert len(communes) == 109
    assert Counter(z.kind for z in communes) == {"ward": 17, "township": 12, "commune": 80}
    assert len(fleet.zones) == 1 + 11 + 109


@pytest.mark.parametrize(
    ("district", "names"),
    [
        ("st-tp-soc-trang", [f"Phường {i}" for i in range(1, 11)]),
        (
            "st-chau-thanh",
            [
                "Châu Thành",
                "An Hiệp",
                "An Ninh",
                "Hồ Đắc Kiện",
                "Phú Tân",
                "Phú Tâm",
                "Thiện Mỹ",
                "Thuận Hòa",
            ],
        ),
        (
            "st-ke-sach",
            [
                "Kế Sách",
                "An Lạc Thôn",
                "An Lạc Tây",
                "An Mỹ",
                "Ba Trinh",
                "Đại Hải",
                "Kế An",
                "Kế Thành",
                "Nhơn Mỹ",
                "Phong Nẫm",
                "Thới An Hội",
                "Trinh Phú",
                "Xuân Hòa",
            ],
        ),
        ("st-vinh-chau", ["Phường 1", "Khánh Hòa", "Vĩnh Phước", "Lạc Hòa", "Vĩnh Hải"]),
        ("st-cu-lao-dung", ["Cù Lao Dung", "An Thạnh 1", "An Thạnh Nam", "Đại Ân 1"]),
        ("st-tran-de", ["Trần Đề", "Lịch Hội Thượng", "Đại Ân 2", "Liêu Tú", "Viên Bình"]),
    ],
)
def test_commune_names_keep_their_diacritics(fleet: Inventory, district: str, names: list[str]) -> None:
    found = {z.name for z in fleet.children(district)}
    assert set(names) <= found


def test_townships_are_marked(fleet: Inventory) -> None:
    assert fleet.zone("st-ke-sach-tt-an-lac-thon").kind is ZoneKind.TOWNSHIP
    assert fleet.zone("st-thanh-tri-tt-phu-loc").name == "Phú Lộc"


def test_file_is_unescaped_utf8() -> None:
    raw = PACKAGED.read_bytes()
    assert "Sóc Trăng".encode() in raw
    assert b"\\u" not in raw


def test_ids_are_unique_and_short(fleet: Inventory) -> None:
    ids = [z.id for z in fleet.zones] + [d.id for d in fleet.devices]
    assert len(ids) == len(set(ids))
    assert max(len(i) for i in ids) <= 64
    assert fleet.device("st-ke-sach-an-my-01").zone == "st-ke-sach-an-my"


def test_every_commune_has_two_to_four_clusters(fleet: Inventory) -> None:
    per_zone = Counter(d.zone for d in fleet.devices)
    leaves = {z.id for z in fleet.zones if not fleet.children(z.id)}
    assert set(per_zone) == leaves
    assert all(2 <= n <= 4 for n in per_zone.values())


def test_devices_are_inside_soc_trang(fleet: Inventory) -> None:
    for device in fleet.devices:
        assert 9.25 <= device.lat <= 9.95, device.id
        assert 105.55 <= device.lon <= 106.35, device.id


def test_models_are_mixed_and_match_their_networks(fleet: Inventory) -> None:
    profiles = load_profiles()
    assert {d.model for d in fleet.devices} == set(profiles)
    assert {d.network for d in fleet.devices} == set(Network)
    assert all(d.network in profiles[d.model].networks for d in fleet.devices)


def test_queries_on_the_packaged_tree(fleet: Inventory) -> None:
    assert fleet.ancestors("st-ke-sach-an-my") == ("st-ke-sach-an-my", "st-ke-sach", ROOT)
    assert fleet.ancestors(ROOT) == (ROOT,)
    assert fleet.path_names("st-ke-sach-an-my") == "Sóc Trăng › Kế Sách › An Mỹ"
    assert len(fleet.subtree("st-ke-sach")) == 14
    assert fleet.subtree(ROOT) == {z.id for z in fleet.zones}
    assert fleet.devices_under(ROOT) == fleet.devices
    under = fleet.devices_under("st-tp-soc-trang")
    assert under and all(d.zone.startswith("st-tp-soc-trang-phuong-") for d in under)
    assert fleet.devices_under("st-ke-sach-an-my") == tuple(
        d for d in fleet.devices if d.zone == "st-ke-sach-an-my"
    )


@pytest.mark.parametrize(
    ("query", "what"),
    [
        (lambda inv: inv.zone("nowhere"), "zone"),
        (lambda inv: inv.device("nowhere"), "device"),
        (lambda inv: inv.ancestors("nowhere"), "zone"),
        (lambda inv: inv.subtree("nowhere"), "zone"),
        (lambda inv: inv.devices_under("nowhere"), "zone"),
        (lambda inv: inv.children("nowhere"), "zone"),
        (lambda inv: inv.path_names("nowhere"), "zone"),
    ],
)
def test_unknown_ids_raise_naming_the_id(
    fleet: Inventory, query: Callable[[Inventory], object], what: str
) -> None:
    with pytest.raises(InventoryError, match=f"no {what} 'nowhere' in inventory 'Sóc Trăng'"):
        query(fleet)


def test_load_by_path(tmp_path: Path) -> None:
    copy = tmp_path / "copy.json"
    copy.write_bytes(PACKAGED.read_bytes())
    assert load_inventory(copy) == load_inventory("soc_trang")
    assert load_inventory(str(copy)).devices == load_inventory().devices


def test_unknown_bare_name_lists_what_is_packaged() -> None:
    with pytest.raises(InventoryError, match=r"no packaged inventory 'ha_noi'.*soc_trang"):
        load_inventory("ha_noi")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InventoryError, match=r"absent\.json: cannot read"):
        load_inventory(tmp_path / "absent.json")


# --- general trees: nothing assumes three levels ---------------------------------------------


def _zone(zid: str, parent: str | None, kind: str = "commune", name: str = "") -> Doc:
    return {"id": zid, "name": name or zid.upper(), "kind": kind, "parent": parent}


def _device(did: str, zone: str, **fields: Any) -> Doc:
    base = {
        "id": did,
        "name": f"Cụm loa {did}",
        "zone": zone,
        "model": "ipc-4g-30w",
        "lat": 9.6,
        "lon": 105.9,
        "network": "4g",
    }
    return base | fields


def _doc(zones: list[Doc], devices: list[Doc]) -> Doc:
    return {
        "format": 1,
        "name": "Thử nghiệm",
        "timezone": "Asia/Ho_Chi_Minh",
        "zones": zones,
        "devices": devices,
    }


def test_two_level_tree() -> None:
    """Post-2025 map: province straight to communes."""
    inv = inventory_from_dict(
        _doc(
            [
                _zone("p", None, "province", "Cần Thơ"),
                _zone("a", "p", name="Phú Lợi"),
                _zone("b", "p"),
            ],
            [_device("a-1", "a"), _device("a-2", "a"), _device("b-1", "b")],
        )
    )
    assert inv.ancestors("a") == ("a", "p")
    assert inv.subtree("p") == {"p", "a", "b"}
    assert inv.subtree("a") == {"a"}
    assert [d.id for d in inv.devices_under("a")] == ["a-1", "a-2"]
    assert len(inv.devices_under("p")) == 3
    assert [z.id for z in inv.children("p")] == ["a", "b"]
    assert inv.children("a") == ()
    assert inv.path_names("a") == "Cần Thơ › Phú Lợi"


def test_four_level_tree_with_devices_at_several_depths() -> None:
    inv = inventory_from_dict(
        _doc(
            [
                _zone("p", None, "province"),
                _zone("d", "p", "district"),
                _zone("c", "d"),
                _zone("h1", "c", "hamlet", "Ấp Mỹ Hòa"),
                _zone("h2", "c", "hamlet"),
                _zone("d2", "p", "district"),
            ],
            [_device("x1", "h1"), _device("x2", "h2"), _device("xc", "c"), _device("xd2", "d2")],
        )
    )
    assert inv.ancestors("h1") == ("h1", "c", "d", "p")
    assert inv.subtree("d") == {"d", "c", "h1", "h2"}
    assert [d.id for d in inv.devices_under("c")] == ["x1", "x2", "xc"]
    assert [d.id for d in inv.devices_under("h2")] == ["x2"]
    assert [d.id for d in inv.devices_under("d2")] == ["xd2"]
    assert inv.path_names("h1") == "P › D › C › Ấp Mỹ Hòa"


def test_explicit_profiles_are_used() -> None:
    profile = HardwareProfile("fm-rx", "Test", "FM receiver", ("mp3",), 10, 50, 16, (Network.WIRED,))
    doc = _doc([_zone("p", None, "province")], [_device("x", "p", model="fm-rx", network="wired")])
    assert inventory_from_dict(doc, profiles={"fm-rx": profile}).device("x").model == "fm-rx"
    with pytest.raises(InventoryError, match="model 'ipc-4g-30w' has no hardware profile"):
        inventory_from_dict(
            _doc([_zone("p", None, "province")], [_device("x", "p")]), profiles={"fm-rx": profile}
        )


# --- validation: each problem names the file, the record and what is wrong ---------------------


def _valid() -> Doc:
    return _doc(
        [
            _zone("root", None, "province"),
            _zone("dist", "root", "district"),
            _zone("com", "dist"),
            _zone("com2", "dist"),
        ],
        [_device("dev-1", "com"), _device("dev-2", "com2")],
    )


def _set(path: tuple[str | int, ...], value: Any) -> Callable[[Doc], None]:
    def mutate(doc: Doc) -> None:
        target: Any = doc
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return mutate


def _append(key: str, record: Doc) -> Callable[[Doc], None]:
    return lambda doc: doc[key].append(record)


def _drop(path: tuple[str | int, ...]) -> Callable[[Doc], None]:
    def mutate(doc: Doc) -> None:
        target: Any = doc
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]

    return mutate


BAD_INVENTORIES = {
    "duplicate zone": (
        _append("zones", _zone("com", "dist")),
        ["zone id 'com' is used more than once"],
    ),
    "duplicate device": (
        _append("devices", _device("dev-1", "com2")),
        ["device id 'dev-1' is used more than once"],
    ),
    "zone and device share an id": (
        _append("devices", _device("com2", "com")),
        ["'com2' names both a zone and a device"],
    ),
    "missing parent": (
        _set(("zones", 2, "parent"), "ghost"),
        ["zone 'com'", "parent 'ghost' does not exist"],
    ),
    "own parent": (
        _set(("zones", 2, "parent"), "com"),
        ["zone 'com'", "parent 'com' is the zone itself"],
    ),
    "cycle": (
        lambda d: d["zones"].extend([_zone("a", "b"), _zone("b", "a")]),
        ["zones form a cycle: a → b → a"],
    ),
    "two roots": (
        _append("zones", _zone("other", None, "province")),
        ["exactly one root", "'root', 'other'"],
    ),
    "no zones": (_set(("zones",), []), ["exactly one root", "found none"]),
    "device zone missing": (
        _set(("devices", 1, "zone"), "ghost"),
        ["device 'dev-2'", "zone 'ghost' does not exist"],
    ),
    "model without profile": (
        _set(("devices", 0, "model"), "ipc-5g-90w"),
        ["device 'dev-1'", "model 'ipc-5g-90w' has no hardware profile", "ipc-4g-30w"],
    ),
    "network the model lacks": (
        _set(("devices", 0, "network"), "wired"),
        ["device 'dev-1'", "has no 'wired' link", "4g, 3g"],
    ),
    "zone id syntax": (
        _set(("zones", 2, "id"), "Xã An Mỹ"),
        ["zone 'Xã An Mỹ'", "may hold only a-z, 0-9"],
    ),
    "device id syntax": (_set(("devices", 0, "id"), "dev 1"), ["device 'dev 1'", "may hold only"]),
    "device id too long": (_set(("devices", 0, "id"), "d" * 65), ["must be 1..64 characters"]),
    "device zone syntax": (_set(("devices", 0, "zone"), "COM"), ["device 'dev-1'", "zone 'COM'"]),
    "latitude out of range": (
        _set(("devices", 1, "lat"), 91.5),
        ["device 'dev-2'", "lat must be within -90..90, got 91.5"],
    ),
    "longitude out of range": (
        _set(("devices", 1, "lon"), -180.5),
        ["device 'dev-2'", "lon must be within -180..180"],
    ),
    "latitude not a number": (
        _set(("devices", 1, "lat"), "9.6"),
        ["device 'dev-2'", "lat must be a number, got str"],
    ),
    "latitude boolean": (_set(("devices", 1, "lat"), True), ["lat must be a number, got bool"]),
    "unknown kind": (
        _set(("zones", 1, "kind"), "county"),
        ["zone 'dist'", "kind must be one of province", "got 'county'"],
    ),
    "unknown network": (
        _set(("devices", 0, "network"), "5g"),
        ["device 'dev-1'", "network must be one of 4g, 3g, wired, got '5g'"],
    ),
    "empty name": (_set(("zones", 2, "name"), "  "), ["zone 'com'", "name must not be empty"]),
    "missing field": (
        _drop(("devices", 0, "network")),
        ["device 'dev-1'", "missing field 'network'"],
    ),
    "unknown field": (
        _set(("devices", 0, "netwrok"), "4g"),
        ["device 'dev-1'", "unknown field 'netwrok'"],
    ),
    "record without id": (_drop(("zones", 3, "id")), ["zones[3]", "missing field 'id'"]),
    "record not an object": (_set(("devices", 1), ["dev-2"]), ["devices[1]", "JSON object"]),
    "zones not an array": (_set(("zones",), {}), ["'zones' must be an array"]),
    "wrong format": (_set(("format",), 2), ["format 2 is not supported (expected 1)"]),
    "missing format": (_drop(("format",)), ["missing field 'format'"]),
    "bad timezone": (
        _set(("timezone",), "Asia/Sai_Gon"),
        ["timezone 'Asia/Sai_Gon' is not a known IANA time zone"],
    ),
}


@pytest.mark.parametrize(("mutate", "fragments"), BAD_INVENTORIES.values(), ids=BAD_INVENTORIES)
def test_bad_inventory_file(tmp_path: Path, mutate: Callable[[Doc], None], fragments: list[str]) -> None:
    doc = _valid()
    mutate(doc)
    path = tmp_path / "bad_fleet.json"
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(InventoryError) as caught:
        load_inventory(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: "), message
    for fragment in fragments:
        assert fragment in message, message


def test_the_valid_base_document_loads(tmp_path: Path) -> None:
    path = tmp_path / "ok.json"
    path.write_text(json.dumps(_valid()), encoding="utf-8")
    assert len(load_inventory(path).devices) == 2


def test_nan_coordinate_from_a_dict() -> None:
    doc = _valid()
    doc["devices"][0]["lon"] = float("nan")
    with pytest.raises(InventoryError, match=r"<inventory>: device 'dev-1': lon must be within"):
        inventory_from_dict(doc)


def test_invalid_json_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{\n  "format": 1,\n  "name": "Sóc Trăng",,\n}', encoding="utf-8")
    with pytest.raises(InventoryError, match=r"broken\.json: invalid JSON at line 3"):
        load_inventory(path)


def test_repeated_json_key(tmp_path: Path) -> None:
    path = tmp_path / "twice.json"
    path.write_text('{"format": 1, "format": 1}', encoding="utf-8")
    with pytest.raises(InventoryError, match=r"twice\.json: key 'format' appears twice"):
        load_inventory(path)


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin.json"
    path.write_bytes('{"name": "Sóc Trăng"}'.encode("utf-16"))
    with pytest.raises(InventoryError, match=r"latin\.json: cannot read"):
        load_inventory(path)


def test_decomposed_names_are_normalised() -> None:
    decomposed = unicodedata.normalize("NFD", "Kế Sách")
    assert decomposed != "Kế Sách"
    assert Zone("ks", decomposed, ZoneKind.DISTRICT, "p").name == "Kế Sách"


# --- hardware profiles -----------------------------------------------------------------------


def test_packaged_profiles() -> None:
    profiles = load_profiles()
    assert set(profiles) == {"ipc-4g-30w", "ipc-wired-60w", "legacy-3g-mp3"}
    legacy, ipc = profiles["legacy-3g-mp3"], profiles["ipc-4g-30w"]
    assert legacy.codecs == ("mp3",) and legacy.networks == (Network.UMTS,)
    assert ipc.codecs == ("opus", "mp3") and ipc.amplifier_watts == 30
    assert profiles["ipc-wired-60w"].networks == (Network.WIRED,)
    assert all(0 < p.max_volume <= 100 for p in profiles.values())


def test_codec_choice_follows_preference_order() -> None:
    profiles = load_profiles()
    assert profiles["ipc-4g-30w"].preferred_codec(["mp3", "opus"]) == "opus"
    assert profiles["legacy-3g-mp3"].preferred_codec(["opus", "mp3"]) == "mp3"
    assert profiles["legacy-3g-mp3"].preferred_codec(["opus"]) is None
    assert not profiles["legacy-3g-mp3"].supports("opus")


def _profile(**fields: Any) -> Doc:
    base = {
        "id": "p1",
        "vendor": "V",
        "description": "D",
        "codecs": ["opus"],
        "amplifier_watts": 30,
        "max_volume": 90,
        "storage_mb": 64,
        "networks": ["4g"],
    }
    return base | fields


BAD_PROFILES = {
    "duplicate id": ([_profile(), _profile()], ["profile id 'p1' is used more than once"]),
    "no codecs": ([_profile(codecs=[])], ["profile 'p1'", "codecs must be a non-empty list"]),
    "repeated codec": ([_profile(codecs=["mp3", "mp3"])], ["codecs lists mp3 more than once"]),
    "bad codec token": ([_profile(codecs=["mp 3"])], ["codec must be"]),
    "volume above 100": ([_profile(max_volume=150)], ["max_volume must be an integer in 1..100"]),
    "zero watts": ([_profile(amplifier_watts=0)], ["amplifier_watts must be an integer"]),
    "storage as text": ([_profile(storage_mb="64")], ["storage_mb must be an integer"]),
    "unknown network": ([_profile(networks=["lora"])], ["network must be one of", "'lora'"]),
    "bad id": ([_profile(id="P1")], ["profile 'P1'", "may hold only"]),
    "missing field": ([{"id": "p1"}], ["profile 'p1'", "missing field"]),
}


@pytest.mark.parametrize(("profiles", "fragments"), BAD_PROFILES.values(), ids=BAD_PROFILES)
def test_bad_profiles_file(tmp_path: Path, profiles: list[Doc], fragments: list[str]) -> None:
    path = tmp_path / "profiles.json"
    path.write_text(json.dumps({"format": 1, "profiles": profiles}), encoding="utf-8")
    with pytest.raises(InventoryError) as caught:
        load_profiles(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: "), message
    for fragment in fragments:
        assert fragment in message, message


# --- values ----------------------------------------------------------------------------------


def test_records_are_frozen_and_validated_on_construction() -> None:
    zone = Zone("an-my", "An Mỹ", ZoneKind.COMMUNE, "ke-sach")
    with pytest.raises(dataclasses.FrozenInstanceError):
        zone.name = "x"  # type: ignore[misc]
    with pytest.raises(InventoryError, match="lat must be within"):
        DeviceSpec("d", "Cụm loa", "z", "m", 100.0, 105.0, Network.LTE)
    with pytest.raises(InventoryError, match="may hold only"):
        Zone("An My", "An Mỹ", ZoneKind.COMMUNE, None)


def test_devices_package_keeps_its_boundary() -> None:
    code = (
        "import sys, devices.inventory\n"
        "bad = [m for m in sys.modules if m.split('.')[:2] in "
        "(['speakerctl', 'controller'], ['speakerctl', 'store'], ['speakerctl', 'scheduler'])]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
