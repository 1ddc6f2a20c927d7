"""Text for the operator's terminal: stored or remote text made safe to print, ids never cut."""

from __future__ import annotations

import re
from collections.abc import Iterable

from rich.markup import escape
from rich.table import Column

from speakerctl.cli.common import console_err

_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]")
"""C0 and C1 controls (ESC among them), DEL, and the bidirectional overrides that reorder a line."""


def safe(value: object) -> str:
    """`value` as text that can only print itself: controls shown as \\xNN / \\uNNNN, rich markup escaped."""
    text = "" if value is None else str(value)
    return escape(_CONTROL.sub(_visible, text))


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def announce(line: str) -> None:
    """A progress line from the application (it may quote a broker's or a cluster's words), on stderr."""
    console_err.print(safe(line), highlight=False)


def id_column(header: str, ids: Iterable[object]) -> Column:
    """A table column of ids: never wrapped nor cut, as wide as the longest; other columns give way."""
    width = max((len(str(i)) for i in ids), default=0)
    return Column(header, no_wrap=True, min_width=max(width, len(header)))
