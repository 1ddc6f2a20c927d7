"""The bulletin library: codecs from the fleet's hardware, all-or-nothing storage, removal, history."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest

from speakerctl.app.bulletins import import_bulletin
from speakerctl.app.context import open_store
from speakerctl.audio import Composition, ContentStore, Recording, generate_tone
from speakerctl.clock import FixedClock
from speakerctl.config import Settings
from speakerctl.controller import library
from speakerctl.errors import ConfigError, InUse, NotFound, StoreError
from speakerctl.fleet import HardwareProfile, load_inventory, load_profiles
from speakerctl.protocol import Priority
from speakerctl.scheduler.book import ScheduleBook
from speakerctl.scheduler.model import Schedule
from speakerctl.scheduler.rules import Kind, Rule
from speakerctl.store import DeliveryStatus, DeliveryUpdate, Store

T0 = datetime(2026, 11, 29, 5, 0, tzinfo=UTC)
ZONE = "st-tp-soc-trang-phuong-1"


def _profile(model: str, *codecs: str) -> HardwareProfile:
    return HardwareProfile(model, "OEM", "test", codecs, 30, 90, 512, ("4g",))  # type: ignore[arg-type]


def test_codecs_are_the_union_of_the_models_opus_first() -> None:
    models = [_profile("a", "mp3"), _profile("b", "opus", "mp3"), _profile("c", "mp3")]
    assert library.codecs_for(models) == ("opus", "mp3")
    assert library.codecs_for([_profile("old", "mp3")]) == ("mp3",)
    assert library.codecs_for([_profile("x", "aac", "mp3")]) == ("mp3",)


def test_a_model_that_plays_nothing_we_encode_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError, match="'x' plays only aac"):
        library.codecs_for([_profile("x", "aac")])


def test_soc_trang_needs_opus_and_mp3() -> None:
    assert library.fleet_codecs(load_inventory(), load_profiles()) == ("opus", "mp3")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture
def store(settings: Settings) -> Store:
    return open_store(settings)


@pytest.fixture
def tone(tmp_path: Path) -> Path:
    return generate_tone(1.0, freq_hz=500, path=tmp_path / "thong-bao.wav")


def _files(settings: Settings) -> list[Path]:
    root = settings.content_dir
    return (
        sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))
        if root.exists()
        else []
    )


def test_an_import_stores_every_rendition_once(store: Store, settings: Settings, tone: Path) -> None:
    bulletin, created = import_bulletin(store, settings, FixedClock(T0), tone, "Thông báo")
    again, created_again = import_bulletin(store, settings, FixedClock(T0), tone, None)
    assert created and not created_again and again == bulletin
    variants = store.bulletins.variants(bulletin.id)
    assert [v.codec for v in variants] == ["opus", "mp3"]
    assert len(_files(settings)) == 2
    assert bulletin.loudness_lufs is not None and abs(bulletin.loudness_lufs + 16) <= 1
    assert bulletin.true_peak_dbtp is not None and bulletin.true_peak_dbtp <= -2
    assert (bulletin.profile, bulletin.created_at, bulletin.source_name) == ("speech", T0, "thong-bao.wav")


def test_a_failed_insert_leaves_no_content_behind(
    store: Store, settings: Settings, tone: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise StoreError("database is locked")

    monkeypatch.setattr(store.bulletins, "add", fail)
    with pytest.raises(StoreError, match="locked"):
        import_bulletin(store, settings, FixedClock(T0), tone, None)
    assert _files(settings) == [] and store.bulletins.all() == []


def test_a_failed_insert_keeps_content_that_was_already_there(
    store: Store, settings: Settings, tone: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kept, _ = import_bulletin(store, settings, FixedClock(T0), tone, None, codecs=["mp3"])

    def fail(*args: object, **kwargs: object) -> None:
        raise StoreError("disk full")

    monkeypatch.setattr(store.bulletins, "add", fail)
    monkeypatch.setattr(store.bulletins, "by_sha", lambda sha: None)
    with pytest.raises(StoreError):
        import_bulletin(store, settings, FixedClock(T0), tone, None)
    assert [p.name for p in _files(settings)] == [f"{kept.sha256}.mp3"]


def test_removal_deletes_only_content_nothing_else_uses(store: Store, settings: Settings, tone: Path) -> None:
    first, _ = import_bulletin(store, settings, FixedClock(T0), tone, "A")
    variants = store.bulletins.variants(first.id)
    shared = store.bulletins.add("B", "ab" * 32, "mp3", "mp3", 48, 1000, 10, "b.wav", "op", T0, [variants[1]])
    removed = library.remove_bulletin(store, settings, FixedClock(T0), first.id)
    assert removed.id == first.id
    assert [p.stem for p in _files(settings)] == [variants[1].sha256]
    with pytest.raises(NotFound):
        store.bulletins.get(first.id)
    assert [b.id for b in store.bulletins.all()] == [shared.id]
    with pytest.raises(NotFound):
        library.remove_bulletin(store, settings, FixedClock(T0), first.id)


def _broadcast(store: Store, bulletin_id: int, broadcast_id: str = "bc-1") -> list[str]:
    devices = store.devices.ids_in([ZONE])
    store.broadcasts.create(
        broadcast_id,
        bulletin_id,
        Priority.NORMAL,
        [ZONE],
        devices,
        T0,
        T0,
        T0 + timedelta(hours=1),
    )
    return devices


def test_a_bulletin_on_air_cannot_be_removed(store: Store, settings: Settings, tone: Path) -> None:
    bulletin, _ = import_bulletin(store, settings, FixedClock(T0), tone, None)
    _broadcast(store, bulletin.id)
    with pytest.raises(InUse, match="on air"):
        library.remove_bulletin(store, settings, FixedClock(T0), bulletin.id)
    assert len(_files(settings)) == 2
    store.broadcasts.finish("bc-1", "complete", T0)  # type: ignore[arg-type]
    library.remove_bulletin(store, settings, FixedClock(T0), bulletin.id)
    assert store.broadcasts.get("bc-1").bulletin_id == bulletin.id  # the history stays
    with pytest.raises(NotFound):
        store.broadcasts.create("bc-2", bulletin.id, Priority.NORMAL, [], [], T0, T0, T0)


def test_a_scheduled_bulletin_cannot_be_removed(store: Store, settings: Settings, tone: Path) -> None:
    bulletin, _ = import_bulletin(store, settings, FixedClock(T0), tone, None)
    assert library.schedules_using(store, bulletin.id) == []
    book = ScheduleBook(store)
    rule = Rule(Kind.DAILY, times=(time(5, 0),))
    book.add(Schedule("sch-sang", bulletin.id, (ZONE,), rule, name="Bản tin sáng"))
    with pytest.raises(InUse, match=r"schedule sch-sang \(Bản tin sáng\)"):
        library.remove_bulletin(store, settings, FixedClock(T0), bulletin.id)
    book.remove("sch-sang")
    library.remove_bulletin(store, settings, FixedClock(T0), bulletin.id)


def test_airings_say_where_when_and_how_many_played(store: Store, settings: Settings, tone: Path) -> None:
    bulletin, _ = import_bulletin(store, settings, FixedClock(T0), tone, None)
    assert library.details(store, bulletin.id).airings == []
    devices = _broadcast(store, bulletin.id)
    at_ms = int((T0 + timedelta(minutes=1)).timestamp() * 1000)
    store.deliveries.apply(
        [DeliveryUpdate("bc-1", d, DeliveryStatus.PLAYING, None, "", at_ms) for d in devices]
        + [DeliveryUpdate("bc-1", devices[0], DeliveryStatus.FINISHED, None, "", at_ms + 1000)]
    )
    (airing,) = library.details(store, bulletin.id).airings
    assert (airing.broadcast.id, airing.clusters, airing.played) == ("bc-1", len(devices), 1)
    assert airing.first_playing_at == T0 + timedelta(minutes=1)
    assert airing.last_finished_at == T0 + timedelta(minutes=1, seconds=1)


def test_export_writes_the_chosen_encoding(
    store: Store, settings: Settings, tone: Path, tmp_path: Path
) -> None:
    bulletin, _ = import_bulletin(store, settings, FixedClock(T0), tone, "Thông báo đặc biệt")
    content = ContentStore(settings.content_dir)
    written = library.export_bulletin(store, settings, bulletin.id, tmp_path)
    assert written.name == f"thong-bao-dac-biet-{bulletin.id}.ogg"
    assert written.read_bytes() == content.read(bulletin.sha256)
    mp3 = library.export_bulletin(store, settings, bulletin.id, tmp_path / "x.mp3", codec="mp3")
    assert mp3.read_bytes() == content.read(store.bulletins.variants(bulletin.id)[1].sha256)
    with pytest.raises(StoreError, match="already exists"):
        library.export_bulletin(store, settings, bulletin.id, written)
    library.export_bulletin(store, settings, bulletin.id, written, codec="mp3", overwrite=True)
    assert written.read_bytes() == mp3.read_bytes()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_a_text_bulletin_is_titled_with_its_first_words() -> None:
    from speakerctl.audio import Speech

    long = Composition((Speech("Kính thưa bà con nhân dân trong xã, hôm nay có lịch tiêm phòng"),))
    assert library.default_title(long) == "Kính thưa bà con nhân dân trong xã, …"
    assert library.default_title(Composition((Recording(Path("a/ban-tin.mp3")),))) == "ban-tin"


def test_slugs_are_plain_ascii() -> None:
    assert library.slug("Bản tin sáng — Đồng Tháp!") == "ban-tin-sang-dong-thap"
    assert library.slug("…") == "bulletin"
