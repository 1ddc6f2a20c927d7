"""Remote actions on one cluster (volume, reboot, ping), acknowledged or timed out, and audited."""

from __future__ import annotations

from speakerctl.app import names, records, views
from speakerctl.app.access import Action as Act
from speakerctl.app.access import Actor, authorize
from speakerctl.app.context import AppContext
from speakerctl.app.policy import zone_tree
from speakerctl.app.runtime import running_controller
from speakerctl.controller.remote import remote_action
from speakerctl.controller.service import Controller
from speakerctl.errors import UsageError
from speakerctl.i18n import _
from speakerctl.protocol import Ping, Reboot, SetVolume
from speakerctl.store import Store

Action = SetVolume | Reboot | Ping


def volume_action(volume: int) -> SetVolume:
    """A volume change, 0..100."""
    if not 0 <= volume <= 100:
        raise UsageError(
            _("volume must be 0..100, got {volume}").format(volume=volume),
            hint=_("e.g. set-volume CLUSTER 60"),
        )
    return SetVolume(volume)


def action_name(body: Action) -> str:
    """The action as the operator reads it, e.g. "volume 35"."""
    return f"volume {body.volume}" if isinstance(body, SetVolume) else body.kind


async def act(
    ctx: AppContext, device_id: str, body: Action, timeout_s: float, *, actor: Actor
) -> views.RemoteResultView:
    """Send the action and wait for the acknowledgement (AckTimeout if none comes in time)."""
    store = ctx.store()
    device_id = allowed(store, actor, names.device_id(store, device_id), body)
    async with running_controller(ctx, store) as controller:
        result = await remote_action(controller, device_id, body, actor=actor.name, timeout=timeout_s)
    return records.remote_result(result, action_name(body))


async def set_volume(
    ctx: AppContext, device_id: str, volume: int, timeout_s: float, *, actor: Actor
) -> views.RemoteResultView:
    """Set a cluster's volume, 0..100."""
    return await act(ctx, device_id, volume_action(volume), timeout_s, actor=actor)


async def reboot(
    ctx: AppContext, device_id: str, timeout_s: float, *, actor: Actor
) -> views.RemoteResultView:
    """Reboot a cluster: it acknowledges first, then drops off and comes back."""
    return await act(ctx, device_id, Reboot(), timeout_s, actor=actor)


async def ping(ctx: AppContext, device_id: str, timeout_s: float, *, actor: Actor) -> views.RemoteResultView:
    """Round-trip time to a cluster and its clock offset."""
    return await act(ctx, device_id, Ping(), timeout_s, actor=actor)


def allowed(store: Store, actor: Actor, device_id: str, body: Action) -> str:
    """The cluster's id if the actor may act on it (NotFound before connecting to the broker).

    Rebooting needs REBOOT; a volume change or a ping (harmless) needs VOLUME, on the cluster's zone.
    """
    zone = store.devices.get(device_id).zone_id
    authorize(actor, Act.REBOOT if isinstance(body, Reboot) else Act.VOLUME, [zone], zone_tree(store))
    return device_id


async def act_on(
    controller: Controller, actor: Actor, device_id: str, body: Action, timeout_s: float
) -> views.RemoteResultView:
    """The action from a running controller (the console's), on a cluster in the actor's zones; audited."""
    device_id = allowed(controller.store, actor, device_id, body)
    result = await remote_action(controller, device_id, body, actor=actor.name, timeout=timeout_s)
    return records.remote_result(result, action_name(body))
