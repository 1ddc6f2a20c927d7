"""Scheduled relays (`schedule add --relay URL --daily 06:00 --for 30m --to ZONE`): the book keeps them,
the runner starts the relay at air time through the live pipeline, and it ends when its time is up.
A real Icecast station, a real Mosquitto, simulated clusters, the controller and its schedule runner."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from icecast import running_icecast
from typer.testing import CliRunner
from waiting import wait_until

from simulator.fleet import Fleet, FleetOptions
from speakerctl.app import runtime, schedules
from speakerctl.app.access import local_administrator
from speakerctl.app.context import AppContext, open_store
from speakerctl.broker.mosquitto import MosquittoProcess
from speakerctl.cli.main import app
from speakerctl.clock import SystemClock
from speakerctl.config import Settings
from speakerctl.controller.service import Controller
from speakerctl.errors import UsageError
from speakerctl.fleet import load_inventory, provisioning_records
from speakerctl.scheduler.book import ScheduleBook
from speakerctl.scheduler.model import RunState
from speakerctl.scheduler.rules import Kind, Rule
from speakerctl.security.keys import load_or_create_signer, trusted_path

ZONE = "st-ke-sach"
CLUSTERS = 4
STATION = "http://127.0.0.1:9/vov1.ogg"


def test_schedule_add_relay_keeps_the_station_and_its_length(tmp_path: Path) -> None:
    runner, opts = CliRunner(), ["--data-dir", str(tmp_path)]
    args = [*opts, "schedule", "add", "--relay", STATION, "--daily", "06:00", "--for", "30m", "--to", ZONE]
    added = runner.invoke(app, [*args, "--json"])
    assert added.exit_code == 0, (added.output, added.exception)
    view = json.loads(added.output)
    assert (view["relay"], view["bulletin"], view["targets"]) == (STATION, 0, [ZONE])
    listed = runner.invoke(app, [*opts, "schedule", "list"], env={"COLUMNS": "200"})
    assert f"relay {STATION}" in listed.output
    shown = runner.invoke(app, [*opts, "schedule", "show", view["id"]], env={"COLUMNS": "200"})
    assert f"relay {STATION} → {ZONE}" in shown.output, shown.output
    book = ScheduleBook.open(Settings(data_dir=tmp_path).db_url)
    try:
        (schedule,) = book.all()
    finally:
        book.close()
    assert schedule.relay is not None and schedule.relay.duration_s == 1800
    # A relay without its length, or with a bulletin too, is refused with a hint; nothing is stored.
    no_length = runner.invoke(app, [*opts, "schedule", "add", "--relay", STATION, "--daily", "07:00",
                                    "--to", ZONE])  # fmt: skip
    assert isinstance(no_length.exception, UsageError)
    not_a_url = runner.invoke(app, [*opts, "schedule", "add", "--relay", "/etc/passwd", "--daily", "07:00",
                                    "--for", "30m", "--to", ZONE])  # fmt: skip
    assert isinstance(not_a_url.exception, UsageError) and "http(s)://" in str(not_a_url.exception)
    assert len(json.loads(runner.invoke(app, [*opts, "schedule", "list", "--json"]).output)) == 1


@pytest.fixture
async def fleet_and_controller(
    mosquitto: MosquittoProcess, tmp_path: Path
) -> AsyncIterator[tuple[Fleet, Controller]]:
    settings = Settings(
        data_dir=tmp_path / "controller", broker=str(mosquitto.url), schedule_lead_s=3.0, accept_window_s=1.0
    )
    inventory = load_inventory()
    ids = [d.id for d in inventory.devices_under(ZONE)][:CLUSTERS]
    load_or_create_signer(settings.keys_dir)
    options = FleetOptions(root=tmp_path / "fleet", trust_file=trusted_path(settings.keys_dir))
    fleet = Fleet(provisioning_records(inventory), settings.broker_address, options)
    fleet.devices = {k: v for k, v in fleet.devices.items() if k in ids}
    store = open_store(settings)
    controller = Controller(settings, store)
    async with asyncio.TaskGroup() as tg:
        fleet_task = tg.create_task(fleet.run())
        await fleet.wait_online(30)
        async with controller.running():
            yield fleet, controller
        fleet_task.cancel()
    store.close()


async def test_a_scheduled_relay_airs_at_its_time_for_its_length(
    fleet_and_controller: tuple[Fleet, Controller],
) -> None:
    fleet, controller = fleet_and_controller
    ctx = AppContext(controller.settings, SystemClock())
    with running_icecast() as icecast, icecast.feed("vov1.ogg"):
        air_at = SystemClock().now() + timedelta(seconds=6)
        rule = Rule(Kind.AT, at=air_at, tz=controller.settings.timezone)
        url = icecast.mount_url("vov1.ogg")
        spec = schedules.ScheduleSpec(0, [ZONE], rule, relay_url=url, relay_for_s=4.0, name="Tiếp sóng VOV1")
        added = await asyncio.to_thread(schedules.add, ctx, spec, actor=local_administrator())
        book = ScheduleBook(controller.store)
        async with runtime.scheduled(controller, book, sync_every_s=0.5) as runner:
            runs = await runner.wait_for_runs(added.schedule.id)
            assert runs[0].state is RunState.AIRED and url in runs[0].detail
            await wait_until(lambda: controller.store.live.latest() != [], "the relay recorded")
            await wait_until(
                lambda: controller.store.live.latest()[0].ended_at is not None, "the relay's end", timeout=60
            )
    record = controller.store.live.latest()[0]
    assert (record.source, record.end_reason, record.actor) == (url, "finished", "local-admin")
    assert abs((record.started_at - air_at).total_seconds()) < 2.0  # at air time, not at the job's lead
    live_ids = [d for d in fleet.devices]
    for device_id in live_ids:
        frames = fleet.devices[device_id].output.live_frames
        assert 9 <= len(frames) <= 11, (device_id, len(frames))  # 4 s in 400 ms frames
    assert not any(fleet.devices[d].agent.live_streams() for d in live_ids)
