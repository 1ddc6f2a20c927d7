"""`speakerctl serve`: the long-running controller."""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated

import typer

from speakerctl.cli.aio import until_signalled
from speakerctl.cli.common import console_err, run, state
from speakerctl.config import Settings
from speakerctl.controller.app import open_store
from speakerctl.controller.monitor import monitoring
from speakerctl.controller.service import Controller
from speakerctl.scheduler import runner as schedules
from speakerctl.scheduler.book import ScheduleBook

log = logging.getLogger(__name__)


def serve(
    http: Annotated[
        str | None, typer.Option(help="Serve the operator page, JSON API and /metrics on HOST:PORT.")
    ] = None,
) -> None:
    """Run the controller: keep the broker link, ingest status and events, run the schedules."""
    run(until_signalled(_serve(state.settings, http)))
    console_err.print("controller stopped")


async def _serve(settings: Settings, http: str | None = None) -> None:
    controller = Controller(
        settings, open_store(settings), client_id=settings.client_id or "speakerctl-serve"
    )
    console_err.print(f"controller on {settings.broker_address.url}, store {settings.db_url}")
    async with (
        controller.running(fail_fast=False),
        monitoring(controller, http, console_err.print),
        schedules.for_controller(controller, ScheduleBook(controller.store)).running(),
    ):
        while True:
            await asyncio.sleep(30)
            c = controller.ingestor.counters
            log.warning("ingested %d statuses, %d events; %d malformed", c.statuses, c.events, c.malformed)
