"""Who may do what, where: roles, actions and zone scopes (the one owner of the access rule).

A user acts within one zone's subtree (a commune operator on their commune, a province operator on the
province). The local administrator of a data directory acts on every zone: whoever can read the data
directory already holds the signing key, so the CLI without a signed-in user is that administrator.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from speakerctl.errors import NotAllowed
from speakerctl.fleet.zonetree import ZoneTree
from speakerctl.i18n import _


class Role(StrEnum):
    """What a user is for, from most to least powerful."""

    ADMINISTRATOR = "administrator"
    APPROVER = "approver"
    OPERATOR = "operator"
    VIEWER = "viewer"


class Action(StrEnum):
    """Everything a user can ask of speakerctl that the access rule decides."""

    VIEW = "view"
    ACKNOWLEDGE = "acknowledge"
    IMPORT = "import"
    SUBMIT = "submit"
    APPROVE = "approve"
    BROADCAST = "broadcast"
    STOP = "stop"
    SCHEDULE = "schedule"
    VOLUME = "volume"
    REBOOT = "reboot"
    PROVISION = "provision"
    REMAP = "remap"
    MANAGE_USERS = "manage_users"


_OPERATE = frozenset(
    {
        Action.VIEW,
        Action.ACKNOWLEDGE,
        Action.IMPORT,
        Action.SUBMIT,
        Action.BROADCAST,
        Action.STOP,
        Action.SCHEDULE,
        Action.VOLUME,
    }
)
ALLOWED: dict[Role, frozenset[Action]] = {
    Role.ADMINISTRATOR: frozenset(Action),
    Role.APPROVER: _OPERATE | {Action.APPROVE, Action.REBOOT},
    Role.OPERATOR: _OPERATE,
    Role.VIEWER: frozenset({Action.VIEW}),
}
"""The actions of each role; approval policy per zone may still hold an operator's item for approval."""

LOCAL_ADMINISTRATOR = "local-admin"


@dataclass(frozen=True, slots=True)
class Actor:
    """A user acting now: name (as the audit log records it), role and the zone whose subtree they act on.

    `zone_id` None means every zone (the local administrator, or an administrator of the installation).
    """

    name: str
    role: Role
    zone_id: str | None = None

    def may(self, action: Action) -> bool:
        """Whether the role allows `action` anywhere at all."""
        return action in ALLOWED[self.role]


def local_administrator() -> Actor:
    """The CLI's actor when no user has signed in: the administrator of this data directory."""
    return Actor(LOCAL_ADMINISTRATOR, Role.ADMINISTRATOR, None)


def authorize(actor: Actor, action: Action, zone_ids: Iterable[str], tree: ZoneTree) -> None:
    """Raise NotAllowed unless `actor`'s role allows `action` on every zone in `zone_ids`."""
    if not actor.may(action):
        raise NotAllowed(
            _("{user} ({role}) may not {action}").format(user=actor.name, role=actor.role, action=action),
            hint=_("ask an administrator for a role that allows it"),
        )
    outside = sorted(set(zone_ids) - _scope(actor, tree)) if actor.zone_id is not None else []
    if outside:
        raise NotAllowed(
            _("{user} acts on {scope} only, not on {zones}").format(
                user=actor.name, scope=actor.zone_id, zones=", ".join(outside)
            ),
            hint=_("sign in as a user of that zone, or pick zones inside yours"),
        )


def _scope(actor: Actor, tree: ZoneTree) -> frozenset[str]:
    assert actor.zone_id is not None
    return tree.subtree([actor.zone_id])
