"""`speakerctl devices provision`: broker accounts for clusters (and the controller), secrets shown once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from speakerctl.app import keys
from speakerctl.app.views import BundlesView, ProvisionedView
from speakerctl.cli.common import console, console_err, current_actor, print_json, state
from speakerctl.cli.text import id_column
from speakerctl.i18n import _, ngettext


def provision(
    device_ids: Annotated[list[str] | None, typer.Argument(help=_("Clusters to provision."))] = None,
    zone: Annotated[str | None, typer.Option(help=_("Every cluster of this zone and below."))] = None,
    controller: Annotated[bool, typer.Option(help=_("Also (re)create the controller's account."))] = False,
    bundle: Annotated[
        Path | None,
        typer.Option(
            help=_("Write one provisioning bundle per cluster into DIR/<device id>/ (docs/protocol.md §16).")
        ),
    ] = None,
    every: Annotated[
        bool, typer.Option("--all", help=_("With --bundle: every cluster of the inventory."))
    ] = False,
    broker_url: Annotated[
        list[str] | None,
        typer.Option(help=_("With --bundle: a broker URL the clusters use, in order (repeat for failover).")),
    ] = None,
    cafile: Annotated[
        Path | None, typer.Option(help=_("With --bundle: the broker's CA certificate (default: broker_ca)."))
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help=_("Print JSON."))] = False,
) -> None:
    """Create each cluster's broker identity and secret, shown now (or bundled) and never again."""
    if bundle is None and (every or broker_url or cafile):
        raise typer.BadParameter(_("--all, --broker-url and --cafile go with --bundle DIR"))
    if bundle is not None and controller:
        raise typer.BadParameter(
            _("provision the controller's account on its own: devices provision --controller")
        )
    if bundle is not None:
        if not (device_ids or zone or every):
            raise typer.BadParameter(_("name the clusters to bundle, or --zone ZONE, or --all"))
        request = keys.BundleRequest(
            bundle, tuple(device_ids or ()), zone, every, tuple(broker_url or ()), cafile
        )
        _bundled(keys.bundles(state.context(), request, actor=current_actor()), as_json)
        return
    _accounts(
        keys.provision(state.context(), list(device_ids or []), zone, controller, actor=current_actor()),
        as_json,
    )


def _accounts(issued: ProvisionedView, as_json: bool) -> None:
    if as_json:
        print_json(issued)
        return
    names = id_column(_("username"), (i.username for i in issued.accounts))
    table = Table(names, id_column(_("secret (shown once)"), (i.secret for i in issued.accounts)))
    for item in issued.accounts:
        table.add_row(item.username, item.secret)
    console.print(table)
    text = _("install each secret in its cluster with the trusted keys file {file}; then {next}")
    console_err.print(text.format(file=issued.trusted_keys, next="`speakerctl broker config mosquitto`"))


def _bundled(written: BundlesView, as_json: bool) -> None:
    if as_json:
        print_json(written)
        return
    title = ngettext("{n} bundle", "{n} bundles", len(written.bundles)).format(n=len(written.bundles))
    table = Table(_("cluster"), _("bundle"), _("brokers"), title=title, title_justify="left")
    for item in written.bundles:
        table.add_row(item.device_id, item.directory, " ".join(item.brokers))
    console.print(table)
    text = _("copy each directory onto its cluster; then {next}")
    console_err.print(text.format(next="`speakerctl broker config mosquitto`"))
