"""Scheduling fields of the play command: what a cluster does with a broadcast that is preempted."""

from __future__ import annotations

from enum import StrEnum

from speakerctl.errors import ProtocolError


class PreemptPolicy(StrEnum):
    """What happens to a broadcast interrupted by one of higher precedence, once that one ends."""

    DROP = "drop"
    RESUME = "resume"
    RESTART = "restart"

    @classmethod
    def parse(cls, value: object) -> PreemptPolicy:
        """Policy from its wire name, or ProtocolError."""
        for policy in cls:
            if value == policy.value:
                return policy
        raise ProtocolError(f"on_preempt must be drop, resume or restart, got {value!r}")
