"""`speakerctl cap`: import a file, refuse a hostile one with exit 6, list what arrived."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from cap_docs import BILLION_LAUGHS, alert, polygon_area
from fleet_small import NOW, inventory
from typer.testing import CliRunner

from speakerctl.broker.mosquitto import MosquittoProcess
from speakerctl.cli.main import app, exit_code
from speakerctl.errors import SpeakerctlError


def test_import_list_and_refusals(
    mosquitto: MosquittoProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPEAKERCTL_INVENTORY", str(inventory(tmp_path / "fleet.json")))
    opts = ["--data-dir", str(tmp_path / "data"), "--broker", str(mosquitto.url)]
    runner = CliRunner()
    mild = tmp_path / "mua-lon.xml"
    mild.write_bytes(
        alert(
            "MUA-LON-7",
            NOW,
            expires=NOW + timedelta(days=3650),
            area=polygon_area(),
            severity="Moderate",
            urgency="Expected",
            certainty="Likely",
            risk_level=2,
        )
    )
    first = runner.invoke(app, [*opts, "cap", "import", str(mild), "--json"])
    assert first.exit_code == 0, first.output
    view = json.loads(first.output)
    assert (view["state"], view["priority"], view["duplicate"]) == ("queued", "normal", False)
    again = json.loads(runner.invoke(app, [*opts, "cap", "import", str(mild), "--json"]).output)
    assert again["duplicate"] and again["id"] == view["id"]

    hostile = tmp_path / "lol.xml"
    hostile.write_bytes(BILLION_LAUGHS)
    refused = runner.invoke(app, [*opts, "cap", "import", str(hostile)])
    assert isinstance(refused.exception, SpeakerctlError) and exit_code(refused.exception) == 6
    assert "DTD" in str(refused.exception)

    listed = json.loads(runner.invoke(app, [*opts, "cap", "list", "--json"]).output)
    assert [a["identifier"] for a in listed] == ["MUA-LON-7"]
    table = runner.invoke(app, [*opts, "cap", "list"])
    assert table.exit_code == 0 and "1 CAP alert" in table.output and "approval" in table.output
    queue = runner.invoke(app, [*opts, "bulletin", "queue", "--json"])
    assert queue.exit_code == 0 and len(json.loads(queue.output)) >= 1
