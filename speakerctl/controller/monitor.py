"""Monitoring inside `speakerctl serve`: the health rules evaluated periodically."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter

from speakerctl.controller.health import HealthPolicy, evaluate
from speakerctl.controller.service import Controller
from speakerctl.errors import StoreError
from speakerctl.logs import Throttled

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
    """Evaluate the rules every `interval_s` until cancelled; any failure waits for the next round."""
    warnings = Throttled(log, controller.clock.monotonic, level=logging.ERROR)
    while True:
        try:
            await evaluate_once(controller, policy)
        except StoreError as exc:
            warnings.log("failed evaluations", "store", "alert evaluation failed, will retry: %s", exc)
        except Exception:
            warnings.log("failed evaluations", "rules", "alert evaluation failed, will retry", exc_info=True)
        await asyncio.sleep(interval_s)
