"""Turns a broadcast request into topics, devices and content variants, and records it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from speakerctl.errors import NotFound, UsageError
from speakerctl.i18n import _
from speakerctl.protocol import ContentRef, PreemptPolicy, Priority, topics
from speakerctl.protocol.fields import wire_text
from speakerctl.protocol.limits import MAX_TARGETS
from speakerctl.store import Claim, Fence, Store


@dataclass(frozen=True, slots=True)
class PlayOptions:
    """How the clusters are told to play it, recorded with the broadcast so a resumed play repeats it."""

    start_at: datetime | None = None
    volume: int | None = None
    on_preempt: PreemptPolicy = PreemptPolicy.DROP
    owner: str = ""
    """The client id of the controller that sends it."""
    started_by: str = ""
    """The user who asked for it."""
    approved_by: str = ""
    """The user who let it air (recorded with the broadcast for reports)."""
    fence: Fence | None = None
    """The lease it is sent under (several controllers): refused once that lease is lost."""
    claim: Claim | None = None
    """The schedule occurrence it airs, claimed with it in one transaction (once, by one controller)."""


@dataclass(frozen=True, slots=True)
class Plan:
    """A recorded broadcast, ready to send."""

    broadcast_id: str
    title: str
    variants: tuple[ContentRef, ...]
    device_ids: tuple[str, ...]
    online: frozenset[str]
    topics: tuple[str, ...]
    duration_ms: int
    expires_at: datetime

    @property
    def wire_title(self) -> str:
        """The title as a `play` carries it: no control characters, within the text limit."""
        return wire_text(self.title)


def resolve_targets(store: Store, targets: Sequence[str]) -> tuple[list[str], list[str]]:
    """The command topics and the device ids that a list of zone and device ids reaches."""
    if not targets:
        raise NotFound("no target given", hint="pass --to ZONE or --to DEVICE (see `speakerctl zones list`)")
    if len(targets) > MAX_TARGETS:
        raise UsageError(
            f"{len(targets)} targets named, at most {MAX_TARGETS}", hint="name a parent zone instead"
        )
    zone_ids = {z.id for z in store.zones.active()}
    _not_retired(store, targets)
    cmd_topics: list[str] = []
    covered: list[str] = []
    devices: dict[str, None] = {}
    for target in dict.fromkeys(targets):
        if target in zone_ids:
            cmd_topics.append(topics.zone_cmd(target))
            covered.append(target)
        else:
            _device_or_fail(store, target)
            cmd_topics.append(topics.device_cmd(target))
            devices[target] = None
    # device_ids_in covers every zone below the ones named, however deep the tree.
    for device_id in store.devices.ids_in(covered) if covered else []:
        devices[device_id] = None
    return cmd_topics, list(devices)


def _not_retired(store: Store, targets: Sequence[str]) -> None:
    """NotFound naming a zone that a remap retired (it stays for history, nothing hangs on it)."""
    retired = sorted(set(targets) & store.zones.retired().keys())
    if retired:
        raise NotFound(
            _("zone {zone} was retired by a remap").format(zone=retired[0]),
            hint=_("target its new commune or ward (see `speakerctl zones list`)"),
        )


def _device_or_fail(store: Store, target: str) -> None:
    try:
        store.devices.get(target)
    except NotFound:
        raise NotFound(
            f"no zone or device named {target!r}",
            hint="see `speakerctl zones list` and `speakerctl devices list`",
        ) from None


def plan_broadcast(
    store: Store,
    bulletin_id: int,
    targets: Sequence[str],
    priority: Priority,
    now: datetime,
    ttl_s: int,
    broadcast_id: str,
    play: PlayOptions = PlayOptions(),
) -> Plan:
    """Resolve, validate and record a broadcast (the broadcast row and one pending delivery per device)."""
    bulletin = store.bulletins.get(bulletin_id)
    variants = tuple(
        ContentRef(v.sha256, v.size, v.codec, v.duration_ms) for v in store.bulletins.variants(bulletin_id)
    )
    cmd_topics, device_ids = resolve_targets(store, targets)
    online = frozenset(d.id for d in store.devices.all(online=True))
    expires_at = now + timedelta(seconds=ttl_s)
    store.broadcasts.create(
        broadcast_id,
        bulletin_id,
        int(priority),
        list(targets),
        device_ids,
        now,
        now,
        expires_at,
        start_at=play.start_at,
        volume=play.volume,
        on_preempt=play.on_preempt,
        owner=play.owner,
        started_by=play.started_by,
        approved_by=play.approved_by,
        fence=play.fence,
        claim=play.claim,
    )
    return Plan(
        broadcast_id,
        bulletin.title,
        variants,
        tuple(device_ids),
        online,
        tuple(cmd_topics),
        bulletin.duration_ms,
        expires_at,
    )
