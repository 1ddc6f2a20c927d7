"""`speakerctl broker config mosquitto`: a Mosquitto configuration, password file and ACL for the fleet."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from speakerctl.broker.mosquitto import (
    MosquittoConfig,
    TlsFiles,
    TrustedListener,
    account_exists,
    broker_account,
    hand_over,
)
from speakerctl.cli.common import console, state
from speakerctl.errors import ConfigError
from speakerctl.fleet import load_inventory
from speakerctl.protocol.limits import BROKER_MAX_PAYLOAD
from speakerctl.security.credentials import CONTROLLER_USER, Credentials, mosquitto_acl

BROKER_EXTRA = (
    # A cluster away for longer is re-provisioned anyway; its queued commands are stale by then.
    "persistent_client_expiration 14d",
    # Mosquitto saves sessions only on exit and every autosave_interval: bound what a crash loses.
    "autosave_interval 60",
)

app = typer.Typer(help="The MQTT broker the fleet uses.", no_args_is_help=True)
config_app = typer.Typer(help="Write broker configurations.", no_args_is_help=True)
app.add_typer(config_app, name="config")


@config_app.command("mosquitto")
def mosquitto(
    out: Annotated[Path, typer.Option(help="Directory for mosquitto.conf, passwd and acl.")],
    port: Annotated[int, typer.Option(help="The clusters' listener port.")] = 1883,
    host: Annotated[str, typer.Option(help="The clusters' listener address.")] = "127.0.0.1",
    controller_port: Annotated[
        int | None, typer.Option(help="The controller's listener port [default: --port + 1].")
    ] = None,
    controller_host: Annotated[
        str | None, typer.Option(help="The controller's listener address [default: --host].")
    ] = None,
    user: Annotated[
        str | None,
        typer.Option(help="Account the broker runs as [default: yours; as root, mosquitto]."),
    ] = None,
    cafile: Annotated[
        Path | None, typer.Option(help="CA certificate: with --certfile/--keyfile, TLS.")
    ] = None,
    certfile: Annotated[Path | None, typer.Option(help="The broker's certificate (PEM).")] = None,
    keyfile: Annotated[Path | None, typer.Option(help="The broker's private key (PEM).")] = None,
) -> None:
    """Only provisioned accounts log in; clusters use only their own topics; only the controller commands.

    Clusters connect to --port, where the client id is the account name, so no cluster takes over
    another's session; the controller connects to --controller-port with ids of its choosing.
    """
    settings = state.settings
    hashes = Credentials.in_dir(settings.data_dir).hashes
    if CONTROLLER_USER not in hashes:
        raise ConfigError(
            "the controller has no broker account", hint="speakerctl devices provision --controller"
        )
    inventory = load_inventory(settings.inventory)
    zones = {d.id: inventory.ancestors(d.zone) for d in inventory.devices if d.id in hashes}
    tls = _tls(cafile, certfile, keyfile)
    acl = mosquitto_acl(CONTROLLER_USER, zones)
    run_as = user or broker_account(os.geteuid(), os.environ.get("SUDO_USER"), account_exists)
    trusted = TrustedListener(
        controller_port or port + 1, frozenset({CONTROLLER_USER}), controller_host or host, acl
    )
    config = MosquittoConfig(
        port=port,
        host=host,
        allow_anonymous=False,
        password_hashes=hashes,
        acl=acl,
        tls=tls,
        persistence=True,
        clientid_is_username=True,
        max_payload=BROKER_MAX_PAYLOAD,
        run_as=run_as,
        trusted=trusted,
        extra=BROKER_EXTRA,
    )
    conf = config.write(out)
    hand_over(out, run_as)
    console.print(
        f"wrote {conf} for {len(zones)} clusters (port {port}) and the controller"
        f" (port {trusted.port}), {'TLS' if tls else 'plain'}, running as {run_as}"
    )


def _tls(cafile: Path | None, certfile: Path | None, keyfile: Path | None) -> TlsFiles | None:
    given = [p for p in (cafile, certfile, keyfile) if p is not None]
    if not given:
        return None
    if cafile is None or certfile is None or keyfile is None:
        raise ConfigError("TLS needs --cafile, --certfile and --keyfile together")
    return TlsFiles(cafile.resolve(), certfile.resolve(), keyfile.resolve())
