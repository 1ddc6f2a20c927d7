"""What the scheduler needs of whoever sends broadcasts: the port the controller side implements.

The scheduler never imports the controller (they are independent layers); the composition root hands
the runner an object with these methods.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from speakerctl.protocol import PreemptPolicy, Priority
from speakerctl.store import Claim, Fence


@dataclass(frozen=True, slots=True)
class ScheduledBroadcast:
    """One occurrence of a schedule, to be sent to its targets and aired at `start_at`."""

    broadcast_id: str
    bulletin_id: int
    targets: tuple[str, ...]
    priority: Priority
    start_at: datetime
    expires_at: datetime
    volume: int | None
    on_preempt: PreemptPolicy
    approved_by: str = ""
    """Who let the schedule air, recorded with each of its broadcasts."""
    claim: Claim | None = None
    """The occurrence it airs: its broadcast is recorded only if this broadcast holds the claim."""
    fence: Fence | None = None
    """The scheduler's lease it is sent under (several controllers): refused once that lease is lost."""


@dataclass(frozen=True, slots=True)
class ScheduledRelay:
    """One occurrence of a relay schedule: a station relayed live to the targets from `start_at`."""

    url: str
    targets: tuple[str, ...]
    priority: Priority
    start_at: datetime
    duration_s: float
    """What is left of the occurrence at `start_at` (a late start ends at the programme's end)."""
    approved_by: str = ""


class Broadcasts(Protocol):
    """Sends scheduled broadcasts and stops the ones sent ahead that must not air any more."""

    async def broadcast(self, request: ScheduledBroadcast) -> None:
        """Send the broadcast and follow it to its end."""
        ...

    async def relay(self, request: ScheduledRelay) -> None:
        """Relay the station live from its start time for its duration."""
        ...

    async def stop(self, broadcast_id: str) -> None:
        """Tell the clusters a broadcast was sent to not to air it (NotFound if it was never sent)."""
        ...

    async def stopped_by(self, broadcast_id: str) -> str | None:
        """Who stopped a broadcast as a whole (an operator's `broadcast stop`), or None if nobody did."""
        ...
