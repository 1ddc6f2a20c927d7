"""Confirming a wide or emergency action: a question on a terminal, else `--yes` or exit 10."""

from __future__ import annotations

import sys

import typer

from speakerctl.app.confirmation import Confirmation, require
from speakerctl.errors import NeedsConfirmation
from speakerctl.i18n import _


def interactive() -> bool:
    """Whether a person can answer a question (stdin and stderr are terminals)."""
    return sys.stdin.isatty() and sys.stderr.isatty()


def ask(question: str) -> bool:
    """Ask a yes/no question on the terminal, "no" by default (Ctrl-C or end of input: no)."""
    try:
        return typer.confirm(question, default=False, err=True)
    except typer.Abort:
        return False


def confirm(confirmation: Confirmation | None, yes: bool) -> bool:
    """Whether the action is confirmed: nothing to confirm, `--yes`, or the user said yes on a terminal.

    NeedsConfirmation (exit 10) without a terminal, or when the user says no.
    """
    if confirmation is None or yes:
        return True
    if not interactive():
        require(confirmation, False)
    if not ask(confirmation.question):
        raise NeedsConfirmation(_("not confirmed: nothing was sent"), hint=_("add --yes to confirm"))
    return True
