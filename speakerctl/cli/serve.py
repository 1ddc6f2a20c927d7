"""`speakerctl serve`: the long-running controller."""

from __future__ import annotations

import asyncio
import logging

from speakerctl.cli.aio import until_signalled
from speakerctl.cli.common import console_err, run, state
from speakerctl.config import Settings
from speakerctl.controller.app import open_store
from speakerctl.controller.service import Controller

log = logging.getLogger(__name__)


def serve() -> None:
    """Run the controller: keep the broker link, ingest status and events into the store."""
    run(until_signalled(_serve(state.settings)))
    console_err.print("controller stopped")


async def _serve(settings: Settings) -> None:
    controller = Controller(
        settings, open_store(settings), client_id=settings.client_id or "speakerctl-serve"
    )
    console_err.print(f"controller on {settings.broker_address.url}, store {settings.db_url}")
    async with controller.running(fail_fast=False):
        while True:
            await asyncio.sleep(30)
            c = controller.ingestor.counters
            log.warning("ingested %d statuses, %d events; %d malformed", c.statuses, c.events, c.malformed)
