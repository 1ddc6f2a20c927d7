"""The Vietnamese interface: the catalogue is complete and consistent, the language is chosen as documented,
the CLI reads in Vietnamese, zone kinds are named as the law names them."""

from __future__ import annotations

import asyncio
import os
import re
import string
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po
from typer.testing import CliRunner

from speakerctl.cli import option_value, startup_language
from speakerctl.cli.main import app
from speakerctl.config import load_settings
from speakerctl.errors import ConfigError
from speakerctl.fleet import ZoneKind, kind_name, zone_title
from speakerctl.i18n import _, catalogue_path, choose, language, reading, set_language, translations

ROOT = Path(__file__).resolve().parents[1]
VI_PO = Path(catalogue_path("vi"))


def _extracted() -> dict[str, int]:
    """Every msgid the sources hold now (as `./run i18n` extracts them), with its line, by Babel's API."""
    with open(ROOT / "babel.cfg", encoding="utf-8") as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    found: dict[str, int] = {}
    for _file, line, message, _comments, _context in extract_from_dir(ROOT, method_map, options_map):
        found.setdefault(message[0] if isinstance(message, tuple) else message, line)
    return found


@pytest.fixture(scope="module")
def vi_catalogue() -> Catalog:
    with VI_PO.open("rb") as po:
        return read_po(po, locale="vi")


def test_every_string_in_the_sources_has_a_vietnamese_translation(vi_catalogue: Catalog) -> None:
    missing = []
    for msgid in _extracted():
        message = vi_catalogue.get(msgid)
        strings = () if message is None else _strings(message)
        if message is None or message.fuzzy or not all(strings):
            missing.append(msgid)
    assert not missing, f"run `./run i18n` and translate these in {VI_PO}: {missing}"


def test_placeholders_match_between_english_and_vietnamese(vi_catalogue: Catalog) -> None:
    wrong = []
    for message in vi_catalogue:
        if not message.id:
            continue
        wanted = _fields(message.id[-1] if isinstance(message.id, tuple) else message.id)
        wrong += [(message.id, s) for s in _strings(message) if s and _fields(s) != wanted]
    assert not wrong


def _strings(message: Message) -> tuple[str, ...]:
    return tuple(message.string) if isinstance(message.string, tuple | list) else (message.string,)


def _fields(text: str) -> set[tuple[str, str | None]]:
    """The `{name!r}` fields of a str.format template, as (name, conversion), and Jinja2's `%(name)s`."""
    braces = {(name, conv) for _lit, name, _spec, conv in string.Formatter().parse(text) if name is not None}
    return braces | {(name, "%") for name in re.findall(r"%\((\w+)\)s", text)}


def test_no_compiled_catalogue_is_kept_in_the_tree() -> None:
    # The .po is the one source: it is compiled in memory at first use (speakerctl.i18n.translations).
    assert not list((ROOT / "speakerctl" / "locale").rglob("*.mo"))
    assert translations("vi").gettext("commune") == "xã"


@pytest.fixture
def clean_locale(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    names = ("SPEAKERCTL_LANG", "SPEAKERCTL_LANGUAGE", "SPEAKERCTL_CONFIG", "LC_ALL", "LC_MESSAGES", "LANG")
    for name in names:
        monkeypatch.delenv(name, raising=False)
    yield monkeypatch


def test_the_language_comes_from_the_option_the_variable_the_settings_then_the_locale(
    clean_locale: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert choose() == "en"
    clean_locale.setenv("LANG", "vi_VN.UTF-8")
    assert choose() == "vi"
    assert choose(setting="en") == "en"
    clean_locale.setenv("SPEAKERCTL_LANG", "en")
    assert choose(setting="vi") == "en"
    assert choose("vi") == "vi"
    config = tmp_path / "speakerctl.toml"
    config.write_text('language = "vi"\n', encoding="utf-8")
    clean_locale.delenv("SPEAKERCTL_LANG")
    clean_locale.delenv("LANG")
    assert startup_language(["--config", str(config), "zones", "list"]) == "vi"
    assert startup_language(["--lang=en", "--config", str(config)]) == "en"
    assert option_value(["--lang"], "--lang") is None


def test_a_language_the_interface_does_not_speak_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "speakerctl.toml"
    config.write_text('language = "fr"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown language 'fr'"):
        load_settings(config, env={})
    result = CliRunner().invoke(app, ["--lang", "fr", "zones", "list"])
    assert "unknown language 'fr'" in str(result.exception)


def test_zone_kinds_are_named_as_the_law_names_them() -> None:
    set_language("vi")
    names = {kind: kind_name(kind) for kind in ZoneKind}
    assert names[ZoneKind.PROVINCE] == "tỉnh" and names[ZoneKind.CITY] == "thành phố"
    assert names[ZoneKind.COMMUNE] == "xã" and names[ZoneKind.WARD] == "phường"
    assert names[ZoneKind.SPECIAL_ZONE] == "đặc khu" and ZoneKind("special_zone") is ZoneKind.SPECIAL_ZONE
    assert (names[ZoneKind.DISTRICT], names[ZoneKind.TOWN], names[ZoneKind.TOWNSHIP]) == (
        "huyện",
        "thị xã",
        "thị trấn",
    )
    assert zone_title("An Mỹ", "commune") == "xã An Mỹ"
    assert zone_title("Phường 1", "ward") == "Phường 1"  # the name already says it
    assert kind_name("no_such_kind") == "no_such_kind"
    set_language("en")
    assert zone_title("An Mỹ", "commune") == "An Mỹ (commune)"
    assert language() == "en" and _("commune") == "commune"


def test_zones_list_reads_in_vietnamese(tmp_path: Path) -> None:
    env = {"SPEAKERCTL_LANG": "vi"}
    result = CliRunner().invoke(app, ["--data-dir", str(tmp_path), "zones", "list"], env=env)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "tỉnh Sóc Trăng" in out and "huyện Kế Sách" in out and "thị trấn Kế Sách" in out
    assert "xã An Mỹ" in out and "279 cụm loa" in out
    english = CliRunner().invoke(app, ["--data-dir", str(tmp_path), "--lang", "en", "zones", "list"], env=env)
    assert "An Mỹ (commune)" in english.output and "279 clusters" in english.output


def _speakerctl(*args: str, lang: str = "vi") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SPEAKERCTL_LANG": lang, "COLUMNS": "200", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "speakerctl", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60, check=False)


def test_errors_and_help_read_in_vietnamese(tmp_path: Path) -> None:
    unknown = _speakerctl("--data-dir", str(tmp_path), "devices", "list", "--zone", "ke sac")
    assert unknown.returncode == 5, unknown.stderr
    assert "lỗi: không có địa bàn nào tên 'ke sac'" in unknown.stderr
    assert "gợi ý: có phải ý bạn là: Kế Sách (huyện, st-ke-sach)" in unknown.stderr
    helped = _speakerctl("schedule", "add", "--help")
    assert "Thêm lịch phát" in helped.stdout and "giờ địa phương" in helped.stdout
    assert "Controller for networks" in _speakerctl("--help", lang="en").stdout


async def test_reading_speaks_the_readers_language_in_its_task_only() -> None:
    async def read(lang: str, ready: asyncio.Event, other: asyncio.Event) -> str:
        with reading(lang):
            ready.set()
            await other.wait()  # both tasks are inside their block at once
            return _("commune")

    a, b = asyncio.Event(), asyncio.Event()
    words = await asyncio.gather(read("vi", a, b), read("en", b, a))
    assert words == ["xã", "commune"]
    assert language() == "en" and _("commune") == "commune"  # the process's language is untouched
