"""`speakerctl broker config mosquitto`: a Mosquitto configuration, password file and ACL for the fleet."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from speakerctl.app import keys
from speakerctl.cli.common import console, current_actor, state
from speakerctl.i18n import _

app = typer.Typer(help=_("The MQTT broker the fleet uses."), no_args_is_help=True)
config_app = typer.Typer(help=_("Write broker configurations."), no_args_is_help=True)
app.add_typer(config_app, name="config")


@config_app.command("mosquitto")
def mosquitto(
    out: Annotated[Path, typer.Option(help=_("Directory for mosquitto.conf, passwd and acl."))],
    port: Annotated[int, typer.Option(help=_("The clusters' listener port."))] = 1883,
    host: Annotated[str, typer.Option(help=_("The clusters' listener address."))] = "127.0.0.1",
    controller_port: Annotated[
        int | None, typer.Option(help=_("The controller's listener port [default: --port + 1]."))
    ] = None,
    controller_host: Annotated[
        str | None, typer.Option(help=_("The controller's listener address [default: --host]."))
    ] = None,
    user: Annotated[
        str | None,
        typer.Option(help=_("Account the broker runs as [default: yours; as root, mosquitto].")),
    ] = None,
    cafile: Annotated[
        Path | None, typer.Option(help=_("CA certificate: with --certfile/--keyfile, TLS."))
    ] = None,
    certfile: Annotated[Path | None, typer.Option(help=_("The broker's certificate (PEM)."))] = None,
    keyfile: Annotated[Path | None, typer.Option(help=_("The broker's private key (PEM)."))] = None,
    remap: Annotated[
        str | None,
        typer.Option(help=_("Also let each cluster read the zones a remap mapping will give it (see docs).")),
    ] = None,
) -> None:
    """Only provisioned accounts log in; clusters use only their own topics; only the controller commands.

    Clusters connect to --port, where the client id is the account name, so no cluster takes over
    another's session; the controller connects to --controller-port with ids of its choosing.
    """
    tls = keys.tls_files(cafile, certfile, keyfile)
    listen = keys.Listeners(host, port, controller_host, controller_port, user)
    written = keys.mosquitto_config(state.context(), out, listen, tls, remap, actor=current_actor())
    text = _(
        "wrote {path} for {clusters} clusters (port {port}) and the controller (port {controller_port}),"
        " {tls}, running as {user}"
    )
    console.print(
        text.format(
            path=written.path,
            clusters=written.clusters,
            port=written.port,
            controller_port=written.controller_port,
            tls="TLS" if written.tls else _("plain"),
            user=written.run_as,
        )
    )
