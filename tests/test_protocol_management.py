"""Management commands, acks and telemetry fields: round trips and rejection of bad values."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from speakerctl.errors import ProtocolError
from speakerctl.protocol import Ack, Command, Ping, Priority, Reboot, SetVolume, Status, codec

NOW = 1_764_390_000_000


@given(st.one_of(st.builds(SetVolume, st.integers(0, 100)), st.just(Reboot()), st.just(Ping())))
def test_management_commands_round_trip(body: SetVolume | Reboot | Ping) -> None:
    command = Command("a1b2c3d4", NOW, NOW + 10_000, Priority.NORMAL, body)
    assert codec.decode_command(codec.encode(command)) == command


@given(st.booleans(), st.text(st.characters(exclude_categories=("Cc",)), max_size=200))
def test_acks_round_trip(ok: bool, detail: str) -> None:
    ack = Ack("e1", "st-ke-sach-an-my-01", NOW, "a1b2c3d4", ok, detail.encode("utf-8", "ignore").decode())
    assert codec.decode_event(codec.encode(ack)) == ack


@pytest.mark.parametrize("volume", [-1, 101, True, 50.5, "50"])
def test_set_volume_rejects_out_of_range_or_mistyped(volume: object) -> None:
    wire = Command("a1", NOW, NOW + 1, Priority.NORMAL, Ping()).to_wire() | {
        "kind": "set_volume",
        "body": {"volume": volume},
    }
    with pytest.raises(ProtocolError):
        codec.decode_command(json.dumps(wire).encode())


def test_status_telemetry_round_trips_and_is_bounded() -> None:
    status = Status("st-01", True, NOW, temperature_c=41.5, storage_free_mb=300, clock_offset_ms=-250)
    assert codec.decode_status(codec.encode(status)) == status
    for field, bad in (("temperature_c", 999), ("temperature_c", True), ("storage_free_mb", -1)):
        wire = status.to_wire() | {field: bad}
        with pytest.raises(ProtocolError):
            codec.decode_status(json.dumps(wire).encode())
