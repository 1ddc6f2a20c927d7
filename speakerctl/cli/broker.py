"""`speakerctl broker config mosquitto`: a Mosquitto configuration, password file and ACL for the fleet."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from speakerctl.broker.mosquitto import MosquittoConfig, TlsFiles
from speakerctl.cli.common import console, state
from speakerctl.errors import ConfigError
from speakerctl.fleet import load_inventory
from speakerctl.security.credentials import CONTROLLER_USER, Credentials, mosquitto_acl

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
    settings = state.settings
    hashes = Credentials.in_dir(settings.data_dir).hashes
    if CONTROLLER_USER not in hashes:
        raise ConfigError(
            "the controller has no broker account", hint="speakerctl devices provision --controller"
        )
    inventory = load_inventory(settings.inventory)
    zones = {d.id: inventory.ancestors(d.zone) for d in inventory.devices if d.id in hashes}
    tls = _tls(cafile, certfile, keyfile)
    config = MosquittoConfig(
        port=port,
        host=host,
        allow_anonymous=False,
        password_hashes=hashes,
        acl=mosquitto_acl(CONTROLLER_USER, zones),
        tls=tls,
        extra=("persistent_client_expiration 14d",),
    )
    conf = config.write(out)
    console.print(f"wrote {conf} for {len(zones)} clusters and the controller ({'TLS' if tls else 'plain'})")


def _tls(cafile: Path | None, certfile: Path | None, keyfile: Path | None) -> TlsFiles | None:
    given = [p for p in (cafile, certfile, keyfile) if p is not None]
    if not given:
        return None
    if cafile is None or certfile is None or keyfile is None:
        raise ConfigError("TLS needs --cafile, --certfile and --keyfile together")
    return TlsFiles(cafile.resolve(), certfile.resolve(), keyfile.resolve())
