"""Per-cluster broker accounts and ACL, written by the CLI and enforced by a real Mosquitto; TLS."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import shutil
import ssl
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from typer.testing import CliRunner
from waiting import Observed

from speakerctl.broker.address import BrokerAddress
from speakerctl.broker.link import Incoming, Link
from speakerctl.broker.mosquitto import MosquittoConfig, MosquittoProcess, TlsFiles
from speakerctl.broker.ports import LOOPBACK, free_port, wait_until_listening
from speakerctl.cli.main import app
from speakerctl.errors import AuthError
from speakerctl.fleet import load_inventory
from speakerctl.protocol import topics


class Inbox:
    """Collects messages; tests wait on what it received."""

    def __init__(self) -> None:
        self.seen: Observed[Incoming] = Observed()

    @property
    def messages(self) -> list[Incoming]:
        return self.seen.items

    async def __call__(self, message: Incoming) -> None:
        self.seen.add(message)

    async def wait_for(self, count: int, topic: str | None = None) -> None:
        """Return once `count` messages (on `topic`, if given) arrived."""
        await self.seen.wait_for(
            lambda ms: sum(topic in (None, m.topic) for m in ms) >= count, f"{count} message(s) on {topic}"
        )

    def payloads(self, topic: str) -> list[bytes]:
        return [m.payload for m in self.messages if m.topic == topic]


def _cli(runner: CliRunner, *args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


@contextmanager
def _mosquitto(binary: str, conf: Path, port: int) -> Iterator[None]:
    with subprocess.Popen([binary, "-c", str(conf)], stderr=subprocess.PIPE) as proc:
        try:
            assert wait_until_listening(LOOPBACK, port, 10, lambda: proc.poll() is None), proc.stderr
            yield
        finally:
            proc.terminate()
            proc.wait(5)


@asynccontextmanager
async def _links(*links: Link) -> AsyncIterator[None]:
    async with asyncio.TaskGroup() as tg:
        tasks = [tg.create_task(link.run(fail_fast=True)) for link in links]
        for link in links:
            await link.wait_connected(10)
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()


@pytest.fixture
def broker_dir() -> Iterator[Path]:
    """A directory the broker's own account can reach (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="speakerctl-broker-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


async def test_provisioned_accounts_and_acl_confine_each_cluster_to_its_own_topics(
    tmp_path: Path, broker_dir: Path, mosquitto_binary: str
) -> None:
    runner, data = CliRunner(), ["--data-dir", str(tmp_path / "data")]
    inventory = load_inventory()
    a, b = (d.id for d in inventory.devices[:2])
    zone_b = inventory.ancestors(next(d.zone for d in inventory.devices if d.id == b))[0]
    issued = json.loads(_cli(runner, *data, "devices", "provision", a, b, "--controller", "--json"))
    secret = {acc["username"]: acc["secret"] for acc in issued["accounts"]}
    assert set(secret) == {"speakerctl", a, b}
    port, controller_port, out = free_port(), free_port(), broker_dir
    ports = ["--port", str(port), "--controller-port", str(controller_port)]
    _cli(runner, *data, "broker", "config", "mosquitto", "--out", str(out), *ports)
    # No plaintext secret anywhere on the controller's side.
    stored = (tmp_path / "data" / "credentials.json").read_text() + (out / "passwd").read_text()
    assert not any(s in stored for s in secret.values())
    assert (tmp_path / "data" / "credentials.json").stat().st_mode & 0o077 == 0

    def address(user: str, password: str | None = None) -> BrokerAddress:
        listener = controller_port if user == "speakerctl" else port
        return BrokerAddress(LOOPBACK, listener, user, password or secret[user])

    controller, dev_a, dev_b = Inbox(), Inbox(), Inbox()
    ctl_link = Link(address("speakerctl"), controller, client_id="ctl")
    a_link = Link(address(a), dev_a, client_id=a, persistent=True)
    b_link = Link(address(b), dev_b, client_id=b, persistent=True)
    await ctl_link.subscribe([topics.ALL_STATUS, topics.ALL_EVENTS])
    await b_link.subscribe([topics.device_cmd(b), topics.zone_cmd(zone_b)])
    with _mosquitto(mosquitto_binary, out / "mosquitto.conf", port):
        async with _links(ctl_link, a_link, b_link):
            # Refused: another cluster's status and events, and any command.
            await a_link.publish(topics.device_status(b), b'{"forged":1}')
            await a_link.publish(topics.device_events(b), b'{"forged":2}')
            await a_link.publish(topics.device_cmd(b), b'{"forged":3}')
            await a_link.publish(topics.zone_cmd(zone_b), b'{"forged":4}')
            # Allowed: its own status; the controller's command.
            await a_link.publish(topics.device_status(a), b'{"own":1}')
            await ctl_link.publish(topics.device_cmd(b), b'{"genuine":1}')
            await ctl_link.publish(topics.zone_cmd(zone_b), b'{"genuine":2}')
            # Each waits for the last allowed message: a forged one, sent before it, would be there first.
            await dev_b.wait_for(2)
            await controller.wait_for(1, topics.device_status(a))
        with pytest.raises(AuthError):
            await asyncio.wait_for(Link(address(a, "wrong-secret"), Inbox()).run(), 10)
    assert controller.payloads(topics.device_status(a)) == [b'{"own":1}']
    assert controller.payloads(topics.device_status(b)) == []
    assert controller.payloads(topics.device_events(b)) == []
    assert [m.payload for m in dev_b.messages] == [b'{"genuine":1}', b'{"genuine":2}']


# -- TLS ---------------------------------------------------------------------------------


def _pki(directory: Path) -> TlsFiles:
    """A throw-away CA and a broker certificate for 127.0.0.1 signed by it."""
    directory.mkdir()
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "speakerctl test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    import ipaddress

    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(LOOPBACK))]), False)
        .sign(ca_key, hashes.SHA256())
    )
    files = TlsFiles(directory / "ca.pem", directory / "broker.pem", directory / "broker.key")
    files.cafile.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files.certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.keyfile.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return files


async def test_link_speaks_tls_to_a_mosquitto_with_a_test_ca(tmp_path: Path, mosquitto_binary: str) -> None:
    tls = _pki(tmp_path / "pki")
    config = MosquittoConfig(port=free_port(), tls=tls)
    with MosquittoProcess(config, tmp_path / "mosquitto", binary=mosquitto_binary) as broker:
        url = f"mqtts://{broker.host}:{broker.port}?ca={tls.cafile}"
        inbox = Inbox()
        link = Link(BrokerAddress.parse(url), inbox)
        await link.subscribe(["pa/v1/tls-test"])
        async with _links(link):
            await link.publish("pa/v1/tls-test", b"qua TLS")
            await inbox.wait_for(1)
        assert inbox.payloads("pa/v1/tls-test") == [b"qua TLS"]
        # A client that trusts another CA refuses this broker's certificate.
        other = _pki(tmp_path / "other-pki")
        context = ssl.create_default_context(cafile=str(other.cafile))
        with pytest.raises(ssl.SSLCertVerificationError):
            await asyncio.open_connection(broker.host, broker.port, ssl=context)
