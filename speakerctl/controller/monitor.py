"""Monitoring inside `speakerctl serve`: the health rules evaluated periodically, and the web page."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from speakerctl.controller.health import HealthPolicy, evaluate
from speakerctl.controller.service import Controller
from speakerctl.errors import StoreError

log = logging.getLogger(__name__)


async def evaluate_once(controller: Controller, policy: HealthPolicy) -> tuple[int, int]:
    """Flush what came in, apply the rules once: (alerts opened, alerts closed)."""
    await controller.ingestor.flush()
    opened, closed = await asyncio.to_thread(evaluate, controller.store, controller.clock.now(), policy)
    for alert in opened:
        log.info("alert opened: %s on %s (%s)", alert.kind, alert.device_id, alert.detail)
    for alert in closed:
        log.info("alert closed: %s on %s", alert.kind, alert.device_id)
    if opened or closed:
        kinds = Counter(a.kind for a in opened)
        summary = ", ".join(f"{kind} ×{n}" for kind, n in kinds.most_common())
        log.warning("alerts: %d opened (%s), %d closed", len(opened), summary or "none", len(closed))
    return len(opened), len(closed)


async def health_loop(controller: Controller, policy: HealthPolicy, interval_s: float) -> None:
    """Evaluate the rules every `interval_s` until cancelled; a store failure waits for the next round."""
    while True:
        try:
            await evaluate_once(controller, policy)
        except StoreError as exc:
            log.error("alert evaluation failed, will retry: %s", exc)
        await asyncio.sleep(interval_s)


@asynccontextmanager
async def monitoring(
    controller: Controller,
    http: str | None = None,
    announce: Callable[[str], None] | None = None,
) -> AsyncIterator[str | None]:
    """Run the health loop and, given HOST:PORT, the web server; yields the page's URL (or None)."""
    from speakerctl.web import WebServer, parse_bind

    settings = controller.settings
    policy = HealthPolicy.from_settings(settings)
    server = WebServer(controller, policy, *parse_bind(http)) if http else None
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(health_loop(controller, policy, settings.health_interval_s))
        try:
            if server is not None:
                await server.start()
                if announce is not None:
                    announce(f"operator page on {server.url}")
            yield server.url if server else None
        finally:
            task.cancel()
            if server is not None:
                await server.stop()
