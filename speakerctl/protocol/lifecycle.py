"""The delivery lifecycle: every state of one broadcast on one device, and which transition wins.

A device reports `accepted` → `content_ready` → `playing` → one of the final states `finished`,
`failed` or `expired`. The controller adds three states of its own: `pending` (nothing heard yet),
`unreached` (its timeout verdict) and `stopped` (an operator stopped it there: a device reports that as
`failed` with reason `stopped`, which the controller records as `stopped`; a cluster that has not
answered the stop is recorded `stopped` too, since it will not air it). Protocol mapping, store,
tracker, reports, CLI and web all import these names; none of them spells a state as a string.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum


class DeliveryState(StrEnum):
    """Where one broadcast stands on one device; the values are the wire and database values."""

    PENDING = "pending"
    ACCEPTED = "accepted"
    CONTENT_READY = "content_ready"
    PLAYING = "playing"
    FINISHED = "finished"
    FAILED = "failed"
    EXPIRED = "expired"
    UNREACHED = "unreached"
    STOPPED = "stopped"


PENDING = DeliveryState.PENDING
ACCEPTED = DeliveryState.ACCEPTED
CONTENT_READY = DeliveryState.CONTENT_READY
PLAYING = DeliveryState.PLAYING
FINISHED = DeliveryState.FINISHED
FAILED = DeliveryState.FAILED
EXPIRED = DeliveryState.EXPIRED
UNREACHED = DeliveryState.UNREACHED
STOPPED = DeliveryState.STOPPED

STOPPED_REASON = "stopped"
"""The reason code (protocol `Reason.STOPPED`) a device gives with `failed` when it obeyed a stop."""

DEVICE_FINAL = frozenset({FINISHED, FAILED, EXPIRED})
"""Final states a device reports."""
FINAL = DEVICE_FINAL | {UNREACHED, STOPPED}
"""States after which nothing more is expected."""
REPORTED = DEVICE_FINAL | {ACCEPTED, CONTENT_READY, PLAYING}
"""States a device may put on the wire; `pending` and `unreached` are the controller's own."""
NEEDS_REASON = frozenset({FAILED, EXPIRED})
"""Device-reported states that must carry a reason code."""
SOUNDED = frozenset({PLAYING, FINISHED})
"""States in which the bulletin has been heard from the device's speakers."""
REACHED = REPORTED
"""States that prove the command reached the device."""
MISSED = frozenset({PENDING, UNREACHED})
"""States of a device that never answered."""
UNSUCCESSFUL = frozenset({FAILED, EXPIRED})
"""Device-reported final states other than `finished`."""
VERDICTS = frozenset({UNREACHED, STOPPED})
"""Final states the controller may set without the device's word; a later device report can replace them."""

RANK: Mapping[DeliveryState, int] = {
    PENDING: 0,
    ACCEPTED: 1,
    CONTENT_READY: 2,
    PLAYING: 3,
    **dict.fromkeys(FINAL, 4),
}


def supersedes(new: DeliveryState, current: DeliveryState) -> bool:
    """Whether a report of `new` replaces a delivery now in `current`.

    States only move forward, and a final state is sticky, except that `unreached` (the controller's
    timeout verdict) yields to a late final report from the device: what the device says happened beats
    the controller's guess. `stopped` set by the controller likewise yields to what the device then says
    it did (`finished`: the stop came too late). A late non-final report does not reopen a closed delivery.
    """
    if current in VERDICTS:
        return new is not current and new in DEVICE_FINAL | {STOPPED}
    return current not in FINAL and RANK[new] > RANK[current]


def recorded(state: DeliveryState, reason: str | None) -> DeliveryState:
    """The state the controller records for a device's report: `failed` because of a stop is `stopped`."""
    return STOPPED if state is FAILED and reason == STOPPED_REASON else state
