"""The rule table: a CAP alert's severity, urgency, certainty and disaster risk level (Decision
18/2021/QĐ-TTg, levels 1-5) → a national priority level; geocodes → zones. Data in TOML, a default
shipped in the package (`rules.toml`), validated when loaded."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from speakerctl.cap.model import Area, Info
from speakerctl.errors import ConfigError
from speakerctl.i18n import _
from speakerctl.protocol import Priority

RISK_LEVELS = range(1, 6)
_FIELDS = frozenset({"severity", "urgency", "certainty", "event", "risk_level", "priority"})


@dataclass(frozen=True, slots=True)
class Rule:
    """One row: every field given must match (an empty tuple matches anything)."""

    priority: Priority
    severity: tuple[str, ...] = ()
    urgency: tuple[str, ...] = ()
    certainty: tuple[str, ...] = ()
    event: tuple[str, ...] = ()
    risk_level: tuple[int, ...] = ()

    def matches(self, info: Info, risk: int | None) -> bool:
        """Whether the info block (with its risk level, None if it has none) meets this rule."""
        return (
            _one_of(info.severity, self.severity)
            and _one_of(info.urgency, self.urgency)
            and _one_of(info.certainty, self.certainty)
            and _one_of(info.event, self.event)
            and (not self.risk_level or risk in self.risk_level)
        )


def _one_of(value: str, allowed: tuple[str, ...]) -> bool:
    return not allowed or value.casefold() in {a.casefold() for a in allowed}


@dataclass(frozen=True, slots=True)
class RuleTable:
    """The rules in order, the parameter names that carry the risk level, and the geocode table."""

    rules: tuple[Rule, ...]
    risk_parameters: tuple[str, ...] = ()
    geocodes: Mapping[tuple[str, str], str] | None = None

    def risk_level(self, info: Info) -> int | None:
        """The disaster risk level 1-5 the block carries ("3", "Cấp 3", "level 4"), else None."""
        value = info.parameter(*self.risk_parameters)
        digits = re.search(r"\d+", value or "")
        level = int(digits.group()) if digits else None
        return level if level in RISK_LEVELS else None

    def priority(self, info: Info) -> Priority:
        """The first matching rule's level; normal if none matches."""
        risk = self.risk_level(info)
        return next((r.priority for r in self.rules if r.matches(info, risk)), Priority.NORMAL)

    def zones(self, areas: Sequence[Area]) -> set[str]:
        """The zones the areas' geocodes name through the table (unknown codes name none)."""
        table = self.geocodes or {}
        return {table[(n, v)] for a in areas for n, v in a.geocodes if (n, v) in table}


def default_rules() -> RuleTable:
    """The table shipped with speakerctl."""
    text = resources.files("speakerctl.cap").joinpath("rules.toml").read_text(encoding="utf-8")
    return parse_rules(tomllib.loads(text), "rules.toml")


def load_rules(path: str) -> RuleTable:
    """The table in a TOML file (the `cap_rules` setting), or the default if `path` is empty."""
    if not path:
        return default_rules()
    try:
        data = tomllib.loads(Path(path).expanduser().read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(
            _("cannot read the CAP rule table {path}: {error}").format(path=path, error=exc)
        ) from exc
    return parse_rules(data, path)


def parse_rules(data: Mapping[str, Any], where: str) -> RuleTable:
    """A validated table from the file's data; ConfigError naming the row at fault."""
    rows = data.get("rule", [])
    if not isinstance(rows, list) or not rows:
        raise ConfigError(
            _("{where}: no [[rule]] rows").format(where=where), hint=_("see speakerctl/cap/rules.toml")
        )
    rules = tuple(_rule(row, where, n) for n, row in enumerate(rows, 1))
    names = tuple(str(n) for n in data.get("risk_parameters", []))
    return RuleTable(rules, names, _geocodes(data.get("geocode", []), where))


def _rule(row: Any, where: str, n: int) -> Rule:
    bad = sorted(set(row) - _FIELDS) if isinstance(row, dict) else ["(not a table)"]
    if bad or "priority" not in row:
        raise ConfigError(
            _("{where}: rule {n} has unknown fields {fields} or no priority").format(
                where=where, n=n, fields=", ".join(bad)
            ),
            hint=_("fields: severity, urgency, certainty, event, risk_level, priority"),
        )
    try:
        level = Priority[str(row["priority"]).upper()]
        risks = tuple(int(r) for r in row.get("risk_level", []))
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(
            _("{where}: rule {n}: priority must be normal, priority or emergency and risk_level 1-5").format(
                where=where, n=n
            )
        ) from exc
    texts = {k: tuple(str(v) for v in row.get(k, [])) for k in ("severity", "urgency", "certainty", "event")}
    return Rule(level, risk_level=risks, **texts)


def _geocodes(rows: Any, where: str) -> dict[tuple[str, str], str]:
    try:
        return {(str(r["name"]), str(r["value"])): str(r["zone"]) for r in rows}
    except (KeyError, TypeError) as exc:
        raise ConfigError(
            _("{where}: each [[geocode]] needs name, value and zone").format(where=where)
        ) from exc
