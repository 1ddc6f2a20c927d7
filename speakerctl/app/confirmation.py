"""What needs an explicit confirmation before it is sent (the one owner of the rule; CLI and web ask it).

Every emergency broadcast, schedule or live stream, and every one aimed at a whole province (a
root zone of the tree), is confirmed by the user, who is shown how many clusters and communes it reaches.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from speakerctl.controller.planning import resolve_targets
from speakerctl.errors import NeedsConfirmation
from speakerctl.fleet import ZoneTree
from speakerctl.i18n import _
from speakerctl.protocol import Priority
from speakerctl.store import Store


class Kind(StrEnum):
    """What is being confirmed."""

    BROADCAST = "broadcast"
    SCHEDULE = "schedule"
    LIVE = "live"


@dataclass(frozen=True, slots=True)
class Confirmation:
    """A question to put to the user before sending: how far and how urgent the action is."""

    kind: Kind
    clusters: int
    communes: int
    emergency: bool
    province_wide: bool

    @property
    def question(self) -> str:
        """The question, in the user's language ("Phát khẩn cấp tới 279 cụm loa ở 109 xã?")."""
        return _QUESTIONS[(self.kind, self.emergency)]().format(
            clusters=self.clusters, communes=self.communes
        )


_QUESTIONS = {
    (Kind.BROADCAST, True): lambda: _("Emergency broadcast to {clusters} clusters in {communes} communes?"),
    (Kind.BROADCAST, False): lambda: _(
        "Broadcast to the whole province: {clusters} clusters in {communes} communes?"
    ),
    (Kind.SCHEDULE, True): lambda: _(
        "Schedule an emergency broadcast to {clusters} clusters in {communes} communes?"
    ),
    (Kind.SCHEDULE, False): lambda: _(
        "Schedule for the whole province: {clusters} clusters in {communes} communes?"
    ),
    (Kind.LIVE, True): lambda: _("Go live as an emergency to {clusters} clusters in {communes} communes?"),
    (Kind.LIVE, False): lambda: _(
        "Go live to the whole province: {clusters} clusters in {communes} communes?"
    ),
}


def needed(
    store: Store, targets: Sequence[str], priority: Priority, kind: Kind = Kind.BROADCAST
) -> Confirmation | None:
    """The confirmation an action needs, or None (NotFound for an unknown target)."""
    _, device_ids = resolve_targets(store, targets)
    roots = {z.id for z in ZoneTree(store.zones.all()).roots()}
    emergency, wide = priority is Priority.EMERGENCY, bool(roots & set(targets))
    if not (emergency or wide):
        return None
    wanted = set(device_ids)
    communes = {d.zone_id for d in store.devices.all() if d.id in wanted}
    return Confirmation(kind, len(device_ids), len(communes), emergency, wide)


def require(confirmation: Confirmation | None, confirmed: bool) -> None:
    """Raise NeedsConfirmation unless nothing needs confirming or the user has confirmed."""
    if confirmation is not None and not confirmed:
        raise NeedsConfirmation(
            _("not confirmed: {question}").format(question=confirmation.question),
            hint=_("answer the question on a terminal, or add --yes to confirm"),
        )
