"""Remote management with an audit trail: every action is recorded with who, what, when and outcome."""

from __future__ import annotations

import asyncio

from speakerctl.controller.service import Controller, ManageResult
from speakerctl.errors import AckTimeout
from speakerctl.protocol import Ping, Reboot, SetVolume


def describe(body: SetVolume | Reboot | Ping) -> str:
    """The action as the audit log shows it, e.g. "set_volume 35"."""
    return f"set_volume {body.volume}" if isinstance(body, SetVolume) else body.kind


async def remote_action(
    controller: Controller,
    device_id: str,
    body: SetVolume | Reboot | Ping,
    *,
    actor: str,
    timeout: float = 10.0,
) -> ManageResult:
    """Send `body` to the device and record the outcome under `actor` (the user's name); timeouts too."""
    store = controller.store
    try:
        result = await controller.manage(device_id, body, timeout)
    except AckTimeout as exc:
        now = controller.clock.now()
        await asyncio.to_thread(
            store.audit.record, actor, device_id, describe(body), "timeout", str(exc), now
        )
        raise
    outcome = "ok" if result.ok else "refused"
    detail = result.detail or f"rtt {result.rtt_ms:.0f} ms, clock offset {result.clock_offset_ms:+.0f} ms"
    now = controller.clock.now()
    await asyncio.to_thread(store.audit.record, actor, device_id, describe(body), outcome, detail, now)
    return result
