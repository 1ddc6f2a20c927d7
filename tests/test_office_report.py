"""The office report: per commune, the clusters that did not air and why, who started and stopped each
broadcast; XLSX with real date cells, a bold frozen header and filters, CSV with `;` and a BOM."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from openpyxl import load_workbook
from typer.testing import CliRunner

from speakerctl.app import reports
from speakerctl.app.context import open_store
from speakerctl.app.runtime import context
from speakerctl.cli.main import app
from speakerctl.clock import FixedClock
from speakerctl.config import Settings
from speakerctl.controller.office import approved_by
from speakerctl.fleet import Zone, ZoneKind
from speakerctl.protocol import DeliveryEvent, Link, Power, Priority, Reason, Status
from speakerctl.protocol.lifecycle import DeliveryState
from speakerctl.store import DeliveryUpdate, DeviceSpec, StopOrder, Store

NOW = datetime(2026, 11, 29, 6, 0, tzinfo=UTC)  # 13:00 in Vietnam
S = DeliveryState


def _event(device: str, state: DeliveryState, reason: Reason | None = None) -> DeliveryUpdate:
    at = int((NOW + timedelta(seconds=5)).timestamp() * 1000)
    return DeliveryUpdate.from_event(DeliveryEvent(f"{device}{state}", device, at, "bc-1", state, reason))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """A store with a province, two communes, five clusters and one broadcast, stopped in one commune."""
    settings = Settings(data_dir=tmp_path / "ctl")
    store: Store = open_store(settings, sync_inventory=False)
    store.zones.sync(
        [
            Zone("ct", "Cần Thơ", ZoneKind.PROVINCE),
            Zone("ct-ke-sach", "Kế Sách", ZoneKind.COMMUNE, "ct"),
            Zone("ct-an-my", "An Mỹ", ZoneKind.COMMUNE, "ct"),
        ]
    )
    clusters = {"ks-1": "ct-ke-sach", "ks-2": "ct-ke-sach", "ks-3": "ct-ke-sach", "am-1": "ct-an-my"}
    store.devices.sync([DeviceSpec(d, f"Ấp {d}", z, "pa-4g") for d, z in clusters.items()])
    store.devices.sync([DeviceSpec("am-2", "Ấp Mỹ Hòa", "ct-an-my", "pa-4g")])
    status = Status("ks-2", True, int(NOW.timestamp() * 1000), link=Link("4g", -80), power=Power("mains"))
    store.statuses.apply([status], NOW + timedelta(minutes=1))  # ks-2 heard after it was sent
    bulletin = store.bulletins.add("Bão số 9", "ab" * 32, "opus", "ogg", 24, 60_000, 100, "b.mp3", "t", NOW)
    devices = [*clusters, "am-2"]
    store.broadcasts.create(
        "bc-1",
        bulletin.id,
        Priority.EMERGENCY,
        ["ct"],
        devices,
        NOW,
        NOW,
        NOW + timedelta(hours=1),
        started_by="lan",
    )
    store.deliveries.apply([_event("ks-1", S.FINISHED), _event("am-2", S.FAILED, Reason.PREEMPTED)])
    order = StopOrder(("am-1",), "hung", NOW + timedelta(minutes=2), "stopped by hung", whole=False)
    store.broadcasts.stop("bc-1", order)
    store.deliveries.mark_unreached("bc-1", at=NOW + timedelta(minutes=3))  # ks-2, ks-3 never answered
    return settings


def test_the_summary_counts_each_commune_and_says_why(settings: Settings) -> None:
    moved = DeviceSpec("ks-3", "Ấp ks-3", "ct-an-my", "pa-4g")  # moved after the broadcast (a remap)
    open_store(settings, sync_inventory=False).devices.sync([moved])
    found = reports.office(context(settings, FixedClock(NOW + timedelta(hours=1))), "2026-11-29", None)
    communes = {c.name: (c.targeted, c.aired, c.not_aired, dict(c.why)) for c in found.report.communes}
    assert communes == {
        "Kế Sách": (3, 1, 2, {"offline": 1, "unreached": 1}),
        "An Mỹ": (2, 0, 2, {"stopped": 1, "preempted": 1}),
    }
    why = {m.device_id: (m.why, m.delivery.detail) for m in found.report.misses}
    assert why["am-1"] == ("stopped", "stopped by hung") and why["ks-3"][0] == "offline"
    (line,) = found.report.broadcasts
    assert (line.info.started_by, line.approved_by, line.clusters, line.aired) == ("lan", "", 5, 1)
    assert approved_by(line.info) == ""  # until broadcasts record their approver
    only = reports.office(
        context(settings, FixedClock(NOW)), None, None, zone="ct-an-my", broadcast_id="bc-1"
    )
    assert [c.name for c in only.report.communes] == ["An Mỹ"]


def test_xlsx_has_date_cells_a_bold_frozen_header_and_filters(settings: Settings, tmp_path: Path) -> None:
    found = reports.office(context(settings, FixedClock(NOW)), "2026-11-29", "2026-11-29")
    (path,) = reports.export_office(found, tmp_path / "bao-cao.xlsx", reports.ReportFormat.XLSX)
    book = load_workbook(path)
    assert book.sheetnames == ["Communes", "Not aired", "Broadcasts"]
    for sheet in book.worksheets:
        assert sheet.freeze_panes == "A2" and sheet.auto_filter.ref == sheet.dimensions
        assert all(cell.font.b for cell in sheet[1])
        started = sheet["A2"]
        assert started.is_date and started.value == datetime(2026, 11, 29, 13, 0)  # local time
        assert started.number_format == "dd/mm/yyyy hh:mm:ss"
        assert sheet.column_dimensions["A"].width >= 19
    communes = book["Communes"]
    header = [c.value for c in communes[1]]
    assert header[0] == "Started (Asia/Ho_Chi_Minh)" and "Approved by" in header
    rows = {r[4]: r for r in communes.iter_rows(min_row=2, values_only=True)}
    assert rows["An Mỹ"][header.index("stopped")] == 1 and rows["Kế Sách"][header.index("Aired")] == 1
    broadcast = [c.value for c in book["Broadcasts"][2]]
    assert broadcast[6:9] == ["lan", None, None]  # started by lan; no approver; not stopped as a whole


def test_csv_with_a_semicolon_and_a_bom_from_the_cli(settings: Settings, tmp_path: Path) -> None:
    out = tmp_path / "bao-cao.csv"
    args = ["--data-dir", str(settings.data_dir), "report", "bc-1", "--summary", "--format", "csv"]
    result = CliRunner().invoke(app, [*args, "--output", str(out), "--delimiter", ";"])
    assert result.exit_code == 0, result.output
    raw = (tmp_path / "bao-cao-not-aired.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(raw.decode("utf-8-sig").splitlines(), delimiter=";"))
    assert rows[0][:2] == ["Started (Asia/Ho_Chi_Minh)", "Broadcast"]
    assert {r[4]: r[6] for r in rows[1:]} == {
        "ks-2": "unreached",
        "ks-3": "offline",
        "am-1": "stopped",
        "am-2": "preempted",
    }
    assert rows[1][0] == "29/11/2026 13:00:00"
    assert (tmp_path / "bao-cao-communes.csv").exists() and (tmp_path / "bao-cao-broadcasts.csv").exists()


def test_the_summary_fits_a_100_column_terminal_in_vietnamese(settings: Settings) -> None:
    store = open_store(settings, sync_inventory=False)
    long_id = "bc-20261129-130000-a1b2c3"  # the shape of a real broadcast id
    bulletin = store.bulletins.all()[0].id
    store.broadcasts.create(
        long_id, bulletin, Priority.NORMAL, ["ct-an-my"], ["am-1"], NOW, NOW, NOW + timedelta(hours=1)
    )
    store.deliveries.mark_unreached(long_id, at=NOW + timedelta(minutes=3))
    env = {"SPEAKERCTL_LANG": "vi", "COLUMNS": "100"}
    args = ["--data-dir", str(settings.data_dir), "report", "--summary", "--since", "29/11/2026"]
    result = CliRunner().invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert max(len(line) for line in lines) <= 100 and "…" not in result.output
    assert sum(long_id in line for line in lines) == 3  # whole, once in each table
    assert any("Kế Sách" in line and "mất kết" in line for line in lines)  # reasons condensed in one cell
    assert any("Ấp Mỹ Hòa" in line and "am-2" in line for line in lines)


def test_the_broadcast_report_names_every_reason_in_vietnamese(settings: Settings) -> None:
    env = {"SPEAKERCTL_LANG": "vi", "COLUMNS": "100"}
    result = CliRunner().invoke(app, ["--data-dir", str(settings.data_dir), "report", "bc-1"], env=env)
    assert result.exit_code == 0, result.output
    assert "timeout" not in result.output and "không trả lời kịp" in result.output
    assert "…" not in result.output
