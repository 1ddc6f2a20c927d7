"""`speakerctl broker config mosquitto`: a Mosquitto configuration, password file and ACL for the fleet."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from speakerctl.app import keys
from speakerctl.cli.common import console, state

app = typer.Typer(help="The MQTT broker the fleet uses.", no_args_is_help=True)
config_app = typer.Typer(help="Write broker configurations.", no_args_is_help=True)
app.add_typer(config_app, name="config")


@config_app.command("mosquitto")
def mosquitto(
    out: Annotated[Path, typer.Option(help="Directory for mosquitto.conf, passwd and acl.")],
    port: Annotated[int, typer.Option(help="Listener port.")] = 1883,
    host: Annotated[str, typer.Option(help="Listener address.")] = "127.0.0.1",
    cafile: Annotated[
        Path | None, typer.Option(help="CA certificate: with --certfile/--keyfile, TLS.")
    ] = None,
    certfile: Annotated[Path | None, typer.Option(help="The broker's certificate (PEM).")] = None,
    keyfile: Annotated[Path | None, typer.Option(help="The broker's private key (PEM).")] = None,
) -> None:
    """Only provisioned accounts log in; clusters use only their own topics; only the controller commands."""
    tls = keys.tls_files(cafile, certfile, keyfile)
    written = keys.mosquitto_config(state.context(), out, host, port, tls)
    kind = "TLS" if written.tls else "plain"
    console.print(f"wrote {written.path} for {written.clusters} clusters and the controller ({kind})")
