"""`speakerctl serve`: the long-running controller."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated

import typer

from speakerctl.cli.aio import until_signalled
from speakerctl.cli.common import console_err, run, state
from speakerctl.config import Settings
from speakerctl.controller.app import open_store
from speakerctl.controller.health import HealthPolicy
from speakerctl.controller.monitor import monitoring
from speakerctl.controller.service import BroadcastRequest, Controller
from speakerctl.scheduler.book import ScheduleBook
from speakerctl.scheduler.broadcasts import ScheduledBroadcast
from speakerctl.scheduler.runner import ScheduleRunner
from speakerctl.web import WebServer, parse_bind

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
        monitoring(controller) as policy,
        operator_page(controller, policy, http, console_err.print),
        schedule_runner(controller, ScheduleBook(controller.store)).running(),
    ):
        while True:
            await asyncio.sleep(30)
            c = controller.ingestor.counters
            log.warning("ingested %d statuses, %d events; %d malformed", c.statuses, c.events, c.malformed)


# The composition below belongs to the application layer (app/runtime.py) once it exists.


class ControllerBroadcasts:
    """The scheduler's `Broadcasts`, implemented by a running controller."""

    def __init__(self, controller: Controller) -> None:
        self.controller = controller

    async def broadcast(self, request: ScheduledBroadcast) -> None:
        """Send the occurrence through the controller and follow it to its end."""
        await self.controller.broadcast(
            BroadcastRequest(
                request.bulletin_id,
                request.targets,
                request.priority,
                start_at=request.start_at,
                expires_at=request.expires_at,
                volume=request.volume,
                on_preempt=request.on_preempt,
                broadcast_id=request.broadcast_id,
            )
        )

    async def stop(self, broadcast_id: str) -> None:
        """Stop a broadcast sent ahead, signed by the controller, at the targets it went to."""
        await self.controller.stop(broadcast_id)


def schedule_runner(controller: Controller, book: ScheduleBook, **options: float) -> ScheduleRunner:
    """A runner that broadcasts and stops through a running controller."""
    broadcasts = ControllerBroadcasts(controller)
    return ScheduleRunner(book, controller.settings, controller.clock, broadcasts, **options)


@asynccontextmanager
async def operator_page(
    controller: Controller,
    policy: HealthPolicy,
    http: str | None,
    announce: Callable[[str], None] | None = None,
) -> AsyncIterator[str | None]:
    """Serve the web page, API and /metrics on HOST:PORT for the block; yields its URL (None: no HTTP)."""
    if http is None:
        yield None
        return
    server = WebServer(controller, policy, *parse_bind(http))
    await server.start()
    try:
        if announce is not None:
            announce(f"operator page on {server.url}")
        yield server.url
    finally:
        await server.stop()
