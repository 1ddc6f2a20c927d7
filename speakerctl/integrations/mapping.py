"""Field-mapping profiles: what the province's system calls each field speakerctl sends and receives.

A profile is a TOML data file (the packaged `profiles/<name>.toml`, or any file named by path) with one
table per record: `[status]`, `[airing]`, `[inbox]` map speakerctl's field names to the province's, and
`[values.<field>]` translates values that differ too (play state, connection, type, priority). A field the
profile leaves out is not sent. docs/operations.md describes the format.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from speakerctl.errors import ConfigError
from speakerctl.i18n import _

TABLES = ("endpoints", "login", "status", "airing", "inbox")
REQUIRED: dict[str, tuple[str, ...]] = {
    "endpoints": ("login", "status", "airing", "inbox", "ack"),
    "login": ("username", "password", "token"),
    "status": ("cluster_id",),
    "airing": ("cluster_id", "bulletin_id", "started_at"),
    "inbox": ("items", "id", "type", "content_url"),
}
"""What every profile must name: without these the two systems cannot understand each other."""


@dataclass(frozen=True, slots=True)
class Profile:
    """One province's (or vendor's) names for the fields of each record."""

    name: str
    tables: Mapping[str, Mapping[str, str]]
    values: Mapping[str, Mapping[str, Any]]

    def endpoint(self, which: str, **ids: str) -> str:
        """The path of an endpoint, its `{id}` filled in."""
        return self.tables["endpoints"][which].format(**ids)

    def name_of(self, table: str, field: str) -> str:
        """The province's name for one of our fields ("" if the profile leaves it out)."""
        return self.tables[table].get(field, "")

    def outgoing(self, table: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        """Our fields renamed (and their values translated) for the province; unnamed fields left out."""
        names = self.tables[table]
        return {names[k]: self._to_theirs(k, v) for k, v in fields.items() if k in names}

    def incoming(self, table: str, raw: Mapping[str, Any]) -> dict[str, Any]:
        """The province's record with our field names (and values); fields we do not map left out."""
        ours = {theirs: mine for mine, theirs in self.tables[table].items()}
        return {ours[k]: self._to_ours(ours[k], v) for k, v in raw.items() if k in ours}

    def _to_theirs(self, field: str, value: Any) -> Any:
        table = self.values.get(field, {})
        return table.get(str(value), value)

    def _to_ours(self, field: str, value: Any) -> Any:
        table = self.values.get(field, {})
        back = {str(v): k for k, v in table.items()}
        return back.get(str(value), value)


def load_profile(name: str) -> Profile:
    """The packaged profile `name`, or the profile file at path `name`; ConfigError saying what is wrong."""
    path = Path(name).expanduser()
    try:
        if name.endswith(".toml") or path.exists():
            text = path.read_text(encoding="utf-8")
        else:
            text = resources.files(__package__).joinpath("profiles", f"{name}.toml").read_text("utf-8")
        data = tomllib.loads(text)
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            _("mapping profile {name!r} cannot be read: {error}").format(name=name, error=exc),
            hint=_("name a packaged profile or a TOML file"),
        ) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            _("mapping profile {name!r} is not valid TOML: {error}").format(name=name, error=exc)
        ) from exc
    return _profile(name, data)


def _profile(name: str, data: Mapping[str, Any]) -> Profile:
    tables: dict[str, dict[str, str]] = {}
    for table in TABLES:
        found = data.get(table, {})
        if not isinstance(found, dict) or not all(isinstance(v, str) for v in found.values()):
            raise ConfigError(
                _("mapping profile {name!r}: [{table}] must map field names to strings").format(
                    name=name, table=table
                )
            )
        missing = [k for k in REQUIRED[table] if not found.get(k)]
        if missing:
            raise ConfigError(
                _("mapping profile {name!r}: [{table}] lacks {fields}").format(
                    name=name, table=table, fields=", ".join(missing)
                ),
                hint=_("see the default profile, speakerctl/integrations/profiles/default.toml"),
            )
        tables[table] = dict(found)
    values = data.get("values", {})
    if not isinstance(values, dict) or not all(isinstance(v, dict) for v in values.values()):
        raise ConfigError(_("mapping profile {name!r}: [values.<field>] must be tables").format(name=name))
    return Profile(str(data.get("profile", {}).get("name", name)), tables, values)
