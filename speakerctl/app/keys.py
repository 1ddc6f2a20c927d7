"""Keys and provisioning: command-signing keys, broker accounts for clusters, the broker's configuration."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from speakerctl.app import audit, views
from speakerctl.app.access import Action, Actor, authorize
from speakerctl.app.context import AppContext
from speakerctl.broker.address import BrokerAddress
from speakerctl.broker.mosquitto import (
    MosquittoConfig,
    TlsFiles,
    TrustedListener,
    account_exists,
    broker_account,
    hand_over,
)
from speakerctl.errors import ConfigError, NotFound, ProtocolError, UsageError
from speakerctl.fleet import ZoneTree, provisioning_records, write_bundle
from speakerctl.fleet.remap import load_mapping, plan_remap
from speakerctl.i18n import _
from speakerctl.protocol.limits import BROKER_MAX_PAYLOAD
from speakerctl.protocol.provisioning import check_broker_url
from speakerctl.security import keys
from speakerctl.security.credentials import CONTROLLER_USER, Credentials, mosquitto_acl


def _may_provision(ctx: AppContext, actor: Actor, device_ids: list[str] | None = None) -> None:
    """PROVISION on the zones of `device_ids`, or (None: keys, the controller) on every zone."""
    inventory = ctx.inventory()
    tree = ZoneTree(inventory.zones)
    zone_of = {d.id: d.zone for d in inventory.devices}
    zones = list(tree.zones) if device_ids is None else [zone_of[d] for d in device_ids if d in zone_of]
    authorize(actor, Action.PROVISION, zones, tree)


def _audited(ctx: AppContext, actor: Actor, action: str, subject: str, detail: str = "") -> None:
    store = ctx.store(sync_inventory=False)
    audit.record(store, actor, action, ctx.clock.now(), subject=subject, detail=detail)


def init(ctx: AppContext, *, actor: Actor) -> tuple[str, Path]:
    """Create the signing key if there is none: (active key id, the file clusters trust)."""
    _may_provision(ctx, actor)
    signer = keys.load_or_create_signer(ctx.settings.keys_dir, ctx.settings.signing_passphrase())
    return signer.key_id, keys.trusted_path(ctx.settings.keys_dir)


def list_keys(ctx: AppContext, *, actor: Actor) -> list[views.KeyView]:
    """The trusted public keys, the active one marked."""
    _may_provision(ctx, actor)
    active = keys.load_or_create_signer(ctx.settings.keys_dir, ctx.settings.signing_passphrase()).key_id
    return [views.KeyView(key_id=k, active=k == active) for k in keys.trusted_ids(ctx.settings.keys_dir)]


def rotate(ctx: AppContext, *, actor: Actor) -> tuple[str, Path]:
    """Sign with a new key from now on: (its id, the file to give every cluster)."""
    _may_provision(ctx, actor)
    signer = keys.rotate(ctx.settings.keys_dir, ctx.settings.signing_passphrase())
    _audited(ctx, actor, "keys_rotate", f"key {signer.key_id}")
    return signer.key_id, keys.trusted_path(ctx.settings.keys_dir)


def retire(ctx: AppContext, key_id: str, *, actor: Actor) -> None:
    """Stop trusting an old key."""
    _may_provision(ctx, actor)
    keys.retire(ctx.settings.keys_dir, key_id)
    _audited(ctx, actor, "keys_retire", f"key {key_id}")


def _chosen(ctx: AppContext, device_ids: list[str], zone: str | None, every: bool = False) -> list[str]:
    """The clusters named, those of `zone` and below, or (`every`) all of them; NotFound if unknown."""
    inventory = ctx.inventory()
    known = {d.id for d in inventory.devices}
    chosen = list(device_ids)
    if zone is not None:
        chosen += [d.id for d in inventory.devices_under(zone)]
    if every:
        chosen += [d.id for d in inventory.devices]
    unknown = [d for d in chosen if d not in known]
    if unknown:
        raise NotFound(
            _("no cluster named {name!r} in the inventory").format(name=unknown[0]),
            hint="speakerctl devices list",
        )
    return list(dict.fromkeys(chosen))


def provision(
    ctx: AppContext, device_ids: list[str], zone: str | None, controller: bool, *, actor: Actor
) -> views.ProvisionedView:
    """Create broker identities and secrets for the clusters (and the controller); secrets shown once."""
    chosen = _chosen(ctx, device_ids, zone)
    _may_provision(ctx, actor, None if controller else chosen)
    names = list(dict.fromkeys(([CONTROLLER_USER] if controller else []) + chosen))
    issued = Credentials.in_dir(ctx.settings.data_dir).provision(names)
    _audited(ctx, actor, "provision", f"{len(names)} accounts", ", ".join(names)[:2000])
    signer = keys.load_or_create_signer(ctx.settings.keys_dir, ctx.settings.signing_passphrase())
    return views.ProvisionedView(
        trusted_keys=str(keys.trusted_path(ctx.settings.keys_dir)),
        key_id=signer.key_id,
        accounts=[views.AccountView(username=i.username, secret=i.secret) for i in issued],
    )


@dataclass(frozen=True, slots=True)
class BundleRequest:
    """Which clusters get a bundle, where it goes, and how they reach the broker."""

    out: Path
    device_ids: tuple[str, ...] = ()
    zone: str | None = None
    every: bool = False
    brokers: tuple[str, ...] = ()
    """Broker URLs in order of preference; none: the controller's brokers, without its login."""
    cafile: Path | None = None
    """The CA certificate clusters check the broker with; None: the `broker_ca` setting, if any."""


def bundles(ctx: AppContext, request: BundleRequest, *, actor: Actor) -> views.BundlesView:
    """Write one provisioning bundle per cluster, each with a new broker secret (replacing the old)."""
    chosen = _chosen(ctx, list(request.device_ids), request.zone, request.every)
    _may_provision(ctx, actor, chosen)
    brokers = list(request.brokers) or [_plain_url(a) for a in ctx.settings.broker_addresses]
    try:
        for url in brokers:
            check_broker_url(url)
    except ProtocolError as exc:
        raise UsageError(str(exc), hint="e.g. --broker-url mqtts://broker.example:8883") from exc
    ca = _ca_bytes(request.cafile or (Path(ctx.settings.broker_ca) if ctx.settings.broker_ca else None))
    signer = keys.load_or_create_signer(ctx.settings.keys_dir)
    trusted = keys.trusted_path(ctx.settings.keys_dir).read_text(encoding="ascii")
    secrets = {i.username: i.secret for i in Credentials.in_dir(ctx.settings.data_dir).provision(chosen)}
    records = {r.device_id: r for r in provisioning_records(ctx.inventory())}
    written = []
    for device in chosen:
        directory = request.out / device
        write_bundle(directory, records[device], brokers, secrets[device], trusted, ca)
        view = views.BundleView(
            device_id=device, directory=str(directory), brokers=brokers, tls_ca=ca is not None
        )
        written.append(view)
    _audited(ctx, actor, "provision_bundles", f"{len(chosen)} bundles", ", ".join(chosen)[:2000])
    return views.BundlesView(key_id=signer.key_id, bundles=written)


def _plain_url(address: BrokerAddress) -> str:
    return f"{'mqtts' if address.tls else 'mqtt'}://{address.host}:{address.port}"


def _ca_bytes(path: Path | None) -> bytes | None:
    if path is None:
        return None
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the CA certificate {path}: {exc}") from exc


def tls_files(cafile: Path | None, certfile: Path | None, keyfile: Path | None) -> TlsFiles | None:
    """TLS for the broker: all three files or none."""
    if cafile is None and certfile is None and keyfile is None:
        return None
    if cafile is None or certfile is None or keyfile is None:
        raise UsageError("TLS needs --cafile, --certfile and --keyfile together")
    return TlsFiles(cafile.resolve(), certfile.resolve(), keyfile.resolve())


BROKER_EXTRA = (
    # A cluster away for longer is re-provisioned anyway; its queued commands are stale by then.
    "persistent_client_expiration 14d",
    # Mosquitto saves sessions only on exit and every autosave_interval: bound what a crash loses.
    "autosave_interval 60",
)


@dataclass(frozen=True, slots=True)
class BrokerConfig:
    """A Mosquitto configuration written out."""

    path: Path
    clusters: int
    tls: bool
    port: int
    controller_port: int
    run_as: str


def cluster_zones(ctx: AppContext, accounts: set[str], remap: str | None) -> dict[str, list[str]]:
    """Each provisioned cluster's zone chain as the store places it (after any remap); with `remap`, the
    chain it will have after that mapping too, so a cluster told `configure` may read its new topics."""
    store = ctx.store()
    tree = ZoneTree(store.zones.all())
    placed = {d.id: d.zone_id for d in store.devices.all() if d.id in accounts}
    chains = {d: tree.ancestors(z) for d, z in placed.items()}
    if remap is not None:
        plan = plan_remap(load_mapping(remap), store.zones.active(), placed)
        for device_id, chain in plan.chains.items():
            chains[device_id] = list(dict.fromkeys([*chains[device_id], *chain]))
    return chains


@dataclass(frozen=True, slots=True)
class Listeners:
    """Where the clusters and the controller connect, and the account the broker runs as."""

    host: str = "127.0.0.1"
    port: int = 1883
    controller_host: str | None = None
    controller_port: int | None = None
    user: str | None = None


def mosquitto_config(
    ctx: AppContext,
    out: Path,
    listen: Listeners,
    tls: TlsFiles | None,
    remap: str | None = None,
    *,
    actor: Actor,
) -> BrokerConfig:
    """Only provisioned accounts log in; clusters use only their own topics; only the controller commands.

    Clusters connect to `listen.port`, where the client id is the account name, so no cluster takes over
    another's session; the controller connects to its own listener with ids of its choosing.
    """
    _may_provision(ctx, actor)
    hashes = Credentials.in_dir(ctx.settings.data_dir).hashes
    if CONTROLLER_USER not in hashes:
        raise ConfigError(
            "the controller has no broker account", hint="speakerctl devices provision --controller"
        )
    zones = cluster_zones(ctx, set(hashes), remap)
    acl = mosquitto_acl(CONTROLLER_USER, zones)
    run_as = listen.user or broker_account(os.geteuid(), os.environ.get("SUDO_USER"), account_exists)
    trusted = TrustedListener(
        listen.controller_port or listen.port + 1,
        frozenset({CONTROLLER_USER}),
        listen.controller_host or listen.host,
        acl,
    )
    config = MosquittoConfig(
        port=listen.port,
        host=listen.host,
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
    return BrokerConfig(conf, len(zones), tls is not None, listen.port, trusted.port, run_as)
