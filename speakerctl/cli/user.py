"""`speakerctl user` (accounts) and `login`, `logout`, `whoami` (the CLI's signed-in user)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.table import Table

from speakerctl.app import accounts, tokens
from speakerctl.cli.common import console, current_actor, print_json, state
from speakerctl.cli.text import id_column, safe
from speakerctl.dates import format_moment, time_zone
from speakerctl.errors import UsageError
from speakerctl.i18n import _

app = typer.Typer(help=_("User accounts: roles and the zone each acts on."), no_args_is_help=True)

PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help=_("Read the password from the first line of stdin."))
]


def read_password(from_stdin: bool, *, confirm: bool) -> str:
    """The password from stdin's first line, or typed twice (once if not `confirm`) without echo."""
    if from_stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise UsageError(
                _("no password on stdin"), hint=_("e.g. printf '%s\\n' \"$PASS\" | speakerctl ...")
            )
        return line
    text: str = typer.prompt(_("Password"), hide_input=True, confirmation_prompt=confirm)
    return text


@app.command("add")
def add(
    name: Annotated[str, typer.Argument(help=_("User name, e.g. lan.ke-sach."))],
    role: Annotated[str, typer.Option("--role", help=_("administrator, approver, operator or viewer."))],
    zone: Annotated[
        str | None, typer.Option("--zone", help=_("The zone the user acts on (default: every zone)."))
    ] = None,
    display_name: Annotated[str, typer.Option("--display-name", help=_("Full name."))] = "",
    password_stdin: PasswordStdin = False,
) -> None:
    """Add a user with a role, acting on one zone and below."""
    actor = current_actor()
    password = read_password(password_stdin, confirm=True)
    new = accounts.NewUser(name, role, zone, password, display_name)
    user = accounts.create_user(state.context(), new, actor=actor)
    console.print(
        _("added user {name} ({role}, {zone})").format(
            name=safe(user.name), role=user.role, zone=safe(user.zone or _("every zone"))
        )
    )


@app.command("list")
def list_users(as_json: Annotated[bool, typer.Option("--json", help=_("Print JSON."))] = False) -> None:
    """The users you may manage."""
    users = accounts.list_users(state.context(), actor=current_actor())
    if as_json:
        print_json(users)
        return
    table = Table(id_column(_("user"), [u.name for u in users]), _("name"), _("role"), _("zone"), _("state"))
    for u in users:
        table.add_row(
            safe(u.name),
            safe(u.display_name),
            u.role,
            safe(u.zone or "*"),
            _("disabled") if u.disabled else _("active"),
        )
    console.print(table)


@app.command("passwd")
def passwd(
    name: Annotated[str, typer.Argument(help=_("User name."))], password_stdin: PasswordStdin = False
) -> None:
    """Change a user's password (your own, or that of a user you manage)."""
    actor = current_actor()
    accounts.change_password(state.context(), name, read_password(password_stdin, confirm=True), actor=actor)
    console.print(_("password of {name} changed").format(name=safe(name)))


@app.command("disable")
def disable(name: Annotated[str, typer.Argument(help=_("User name."))]) -> None:
    """Disable a user: their sessions end and they can no longer sign in."""
    accounts.disable_user(state.context(), name, actor=current_actor())
    console.print(_("user {name} disabled").format(name=safe(name)))


tokens_app = typer.Typer(
    help=_("API tokens: bearer tokens for the HTTP API (/api/v1), each acting as its user."),
    no_args_is_help=True,
)
app.add_typer(tokens_app, name="token")
JsonOption = Annotated[bool, typer.Option("--json", help=_("Print JSON."))]


@tokens_app.command("create")
def token_create(
    name: Annotated[str, typer.Argument(help=_("The user the token acts as."))],
    label: Annotated[str, typer.Option("--label", help=_("What the token is for, e.g. the script."))] = "",
    as_json: JsonOption = False,
) -> None:
    """Create an API token; it is printed this once (only its sha256 is stored)."""
    made = tokens.create(state.context(), name, label, actor=current_actor())
    if as_json:
        print_json(made)
        return
    text = _("API token {id} for {name} (shown once, keep it secret):")
    console.print(text.format(id=made.id, name=safe(name)))
    sys.stdout.write(made.token + "\n")


@tokens_app.command("list")
def token_list(
    name: Annotated[str | None, typer.Argument(help=_("User (default: every user you manage)."))] = None,
    as_json: JsonOption = False,
) -> None:
    """API tokens: id, user, label, first characters, created, last used."""
    found = tokens.list_tokens(state.context(), name, actor=current_actor())
    if as_json:
        print_json(found)
        return
    table = Table(_("id"), _("user"), _("label"), _("token"), _("created"), _("last used"))
    tz = time_zone(state.settings.timezone)
    for t in found:
        used = format_moment(t.last_used_at, tz) if t.last_used_at else "-"
        created = format_moment(t.created_at, tz)
        table.add_row(str(t.id), safe(t.user), safe(t.label), t.prefix + "…", created, used)
    console.print(table)


@tokens_app.command("revoke")
def token_revoke(
    token_id: Annotated[int, typer.Argument(help=_("Token id (see `user token list`)."))],
) -> None:
    """Revoke an API token at once."""
    gone = tokens.revoke(state.context(), token_id, actor=current_actor())
    console.print(_("API token {id} of {name} revoked").format(id=gone.id, name=safe(gone.user)))


def login(
    name: Annotated[str, typer.Argument(help=_("Your user name."))], password_stdin: PasswordStdin = False
) -> None:
    """Sign in: later commands act as you until `logout` or the session expires."""
    who = accounts.login(state.context(), name, read_password(password_stdin, confirm=False))
    console.print(
        _("signed in as {name} ({role}, {zone})").format(
            name=safe(who.user), role=who.role, zone=safe(who.zone or _("every zone"))
        )
    )


def logout() -> None:
    """Sign out: later commands act as the local administrator of the data directory."""
    ended = accounts.logout(state.context())
    console.print(_("signed out") if ended else _("not signed in"))


def whoami(as_json: Annotated[bool, typer.Option("--json", help=_("Print JSON."))] = False) -> None:
    """Who commands act as."""
    who = accounts.whoami(state.context())
    if as_json:
        print_json(who)
        return
    if not who.signed_in:
        console.print(_("{name} (administrator of this data directory, not signed in)").format(name=who.user))
        return
    console.print(
        _("{name} ({role}, {zone})").format(
            name=safe(who.user), role=who.role, zone=safe(who.zone or _("every zone"))
        )
    )
