"""Telling clusters their new zone chain: a signed `configure` to each cluster's own topic (protocol v1.2).

A cluster that announced an older minor revision in its status is not sent anything: it would drop the
command as an unknown kind, so it is listed as needing reprovisioning. A cluster never heard from is
sent it anyway: the broker keeps the command in the cluster's persistent session until it connects
(within the command's lifetime). Acknowledgements are awaited for a while; the rest stay pending.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from speakerctl.clock import to_ms
from speakerctl.controller.service import Controller
from speakerctl.errors import LinkError, NotFound
from speakerctl.i18n import _
from speakerctl.protocol import Ack, Command, Configure, Priority, codec, topics
from speakerctl.protocol.limits import CONFIGURE_MINOR, PROTOCOL_VERSION
from speakerctl.store import Store

CONFIGURE_TTL_S = 30 * 24 * 3600
"""How long a queued `configure` stays valid for a cluster that is offline: 30 days."""


class Outcome(StrEnum):
    """What became of one cluster's `configure`."""

    ACKNOWLEDGED = "acknowledged"
    REFUSED = "refused"
    PENDING = "pending"
    """Sent (queued by the broker for an offline cluster); no answer within the wait."""
    NEEDS_REPROVISIONING = "needs_reprovisioning"


@dataclass(frozen=True, slots=True)
class Reconfigured:
    """One cluster's outcome, with the cluster's words or ours."""

    device_id: str
    outcome: Outcome
    detail: str


def announced_minor(store: Store, device_id: str) -> int | None:
    """The minor protocol revision in the cluster's latest recorded status; None if never heard."""
    try:
        latest = store.statuses.history(device_id, limit=1)
    except NotFound:
        return None
    online = [r for r in latest if r.status.online]
    return online[0].status.protocol_minor if online else None


def too_old(minor: int | None) -> str | None:
    """Why a cluster cannot take `configure`, or None if it can (or might: never heard)."""
    if minor is None or minor >= CONFIGURE_MINOR:
        return None
    return _(
        "its firmware speaks protocol {major}.{minor}; configure needs {major}.{needed}: "
        "provision it again with its new zone chain"
    ).format(major=PROTOCOL_VERSION, minor=minor, needed=CONFIGURE_MINOR)


async def configure_clusters(
    controller: Controller,
    chains: Mapping[str, tuple[str, ...]],
    minors: Mapping[str, int | None],
    wait_s: float,
    ttl_s: int = CONFIGURE_TTL_S,
) -> list[Reconfigured]:
    """Send each cluster its chain (root first) and wait up to `wait_s` for the acknowledgements."""
    skipped = {d: r for d in chains if (r := too_old(minors.get(d))) is not None}
    sent: dict[str, _Sent] = {}
    try:
        for device_id, chain in chains.items():
            if device_id not in skipped:
                sent[device_id] = await _send(controller, device_id, chain, ttl_s)
        acks = await _gather_acks(sent, wait_s)
    finally:
        for command_id, _waiter in sent.values():
            controller.ingestor.forget_ack(command_id)
    out = [Reconfigured(d, Outcome.NEEDS_REPROVISIONING, why) for d, why in skipped.items()]
    return out + [_outcome(d, acks.get(d)) for d in sent]


_Sent = tuple[str, "asyncio.Future[Ack]"]


async def _send(controller: Controller, device_id: str, chain: tuple[str, ...], ttl_s: int) -> _Sent:
    now = to_ms(controller.clock.now())
    topic = topics.device_cmd(device_id)
    command = Command(secrets.token_hex(8), now, now + ttl_s * 1000, Priority.NORMAL, Configure(chain))
    waiter = controller.ingestor.expect_ack(command.msg_id)
    try:
        await controller.link.publish(topic, codec.encode(controller.signer.sign_for(command, topic)))
    except LinkError:
        controller.ingestor.forget_ack(command.msg_id)
        raise
    return command.msg_id, waiter


async def _gather_acks(sent: Mapping[str, _Sent], wait_s: float) -> dict[str, Ack]:
    """The acknowledgements that came within `wait_s` (all of them together), by device."""
    futures = {waiter: device_id for device_id, (_, waiter) in sent.items()}
    if futures:
        await asyncio.wait(futures, timeout=wait_s)
    return {d: f.result() for f, d in futures.items() if f.done() and not f.cancelled()}


def _outcome(device_id: str, ack: Ack | None) -> Reconfigured:
    if ack is None:
        return Reconfigured(
            device_id, Outcome.PENDING, _("no answer yet: it applies when the cluster connects")
        )
    return Reconfigured(device_id, Outcome.ACKNOWLEDGED if ack.ok else Outcome.REFUSED, ack.detail)
