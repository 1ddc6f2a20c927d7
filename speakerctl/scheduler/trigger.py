"""An APScheduler trigger over a `Rule`, firing a lead time before each air time; pickled with a version."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from apscheduler.triggers.base import BaseTrigger

from speakerctl.errors import ConfigError
from speakerctl.scheduler.rules import Rule

TRIGGER_VERSION = 1


class RuleTrigger(BaseTrigger):  # type: ignore[misc]  # APScheduler 3 ships no type hints
    """Fires `lead_s` before every occurrence of the rule, so clusters get the command before air time."""

    def __init__(self, rule: Rule, lead_s: float = 0.0) -> None:
        self.rule = rule
        self.lead = timedelta(seconds=lead_s)

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        """The next firing: strictly after the previous one, else at or after `now`."""
        after = (
            previous_fire_time + self.lead
            if previous_fire_time
            else now + self.lead - timedelta(microseconds=1)
        )
        at = self.rule.next_after(after)
        return None if at is None else at - self.lead

    def __getstate__(self) -> dict[str, Any]:
        return {"version": TRIGGER_VERSION, "rule": self.rule.to_dict(), "lead_s": self.lead.total_seconds()}

    def __setstate__(self, state: dict[str, Any]) -> None:
        if state.get("version") != TRIGGER_VERSION:
            raise ConfigError(f"stored trigger version {state.get('version')!r} is not {TRIGGER_VERSION}")
        self.rule = Rule.from_dict(state["rule"])
        self.lead = timedelta(seconds=state["lead_s"])

    def __repr__(self) -> str:
        return f"<RuleTrigger {self.rule.describe()} lead={self.lead.total_seconds()}s>"
