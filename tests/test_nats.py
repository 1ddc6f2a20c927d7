"""The fleet and the controller on a three-node NATS cluster (JetStream, MQTT 3.1.1 listener).

Each client is told every node's MQTT listener, starting from a different one, so the fleet is
spread over the cluster; a node killed mid-broadcast sends its clients to the next node, and the
broadcast still ends with every delivery finished, none played twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio
from several import spread
from waiting import Observed, wait_until

from devices.identity import Installed
from devices.trust import read_trusted_keys
from simulator.fleet import Fleet, FleetOptions
from speakerctl.app.bulletins import import_bulletin
from speakerctl.app.context import open_store
from speakerctl.audio import generate_tone
from speakerctl.broker.address import BrokerAddress
from speakerctl.broker.link import Incoming, Link
from speakerctl.broker.mosquitto import MosquittoProcess
from speakerctl.broker.nats import NatsCluster, cluster_configs, find_nats_server
from speakerctl.broker.natsingest import SharedIngest, subject_of, topic_of
from speakerctl.broker.ports import free_port
from speakerctl.clock import SystemClock
from speakerctl.config import Settings
from speakerctl.controller.service import BroadcastRequest, Controller
from speakerctl.errors import LinkError
from speakerctl.fleet import load_inventory, provisioning_records
from speakerctl.protocol import topics
from speakerctl.protocol.lifecycle import FINISHED
from speakerctl.retry import Backoff, through_outages
from speakerctl.security.keys import load_or_create_signer, trusted_path
from speakerctl.store import BulletinInfo

ZONE = "st-ke-sach"
CLUSTERS = 9

pytestmark = pytest.mark.skipif(find_nats_server() is None, reason="nats-server is not installed")


@pytest.fixture(scope="module")
def nats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsCluster]:
    """One cluster for the module: a cold start takes ~10 s before JetStream serves MQTT sessions."""
    with NatsCluster(tmp_path_factory.mktemp("nats")) as cluster:
        yield cluster


@dataclass
class Rig:
    """A small fleet spread over the NATS nodes and a controller preferring the first node."""

    nats: NatsCluster
    fleet: Fleet
    controller: Controller
    bulletin: BulletinInfo


def _spread(settings: Settings, trust: Path) -> list[Installed]:
    """Cluster k prefers node k mod 3, then the others in turn."""
    addresses = settings.broker_addresses
    keys = read_trusted_keys(trust)
    inventory = load_inventory()
    ids = [d.id for d in inventory.devices_under(ZONE)][:CLUSTERS]
    records = [r for r in provisioning_records(inventory) if r.device_id in ids]
    return spread(records, addresses, keys)


@pytest_asyncio.fixture
async def rig(nats: NatsCluster, tmp_path: Path) -> AsyncIterator[Rig]:
    """Every node running and serving sessions (a killed one is restarted), a fresh fleet and controller."""
    for node in nats.nodes:
        node.start().wait_serving()
    await nats.wait_ready()
    settings = Settings(
        data_dir=tmp_path / "controller", broker=nats.broker, accept_window_s=1.0, broadcast_timeout_s=120
    )
    load_or_create_signer(settings.keys_dir)
    options = FleetOptions(root=tmp_path / "fleet", time_scale=10)
    fleet = Fleet(_spread(settings, trusted_path(settings.keys_dir)), settings.broker_address, options)
    store = open_store(settings)
    tone = generate_tone(2.0, path=tmp_path / "tin.wav")
    bulletin, _ = import_bulletin(store, settings, SystemClock(), tone, "Tin qua NATS")
    controller = Controller(settings, store)
    async with asyncio.TaskGroup() as tg:
        fleet_task = tg.create_task(fleet.run())
        await fleet.wait_online(60)
        async with controller.running():
            yield Rig(nats, fleet, controller, bulletin)
        fleet_task.cancel()


def _request(rig: Rig) -> BroadcastRequest:
    return BroadcastRequest(rig.bulletin.id, tuple(rig.fleet.devices))


async def test_a_bulletin_reaches_the_fleet_through_the_nats_cluster(rig: Rig) -> None:
    ports = {d.agent.link.address.port for d in rig.fleet.devices.values()}
    assert len(ports) == 3  # the fleet really is spread over the three nodes
    result = await rig.controller.broadcast(_request(rig))
    assert result.counts.get(FINISHED) == CLUSTERS, result.counts
    again = await rig.controller.broadcast(_request(rig))
    assert again.complete and again.upload_bytes == 0


async def test_a_node_killed_mid_broadcast_still_plays_everywhere_once(rig: Rig) -> None:
    """The controller's node dies as the first reports come in: every cluster still plays it, once.

    While JetStream re-elects its leaders the surviving nodes refuse new subscriptions (SUBACK
    0x80) and drop some sessions; the links retry what was refused, and the clusters' content
    requests and the controller's repairs fill in what the lost node took with it.
    """
    first = rig.nats.nodes[0]
    assert rig.controller.link.address.port == first.port
    store = rig.controller.store
    running = asyncio.create_task(rig.controller.broadcast(_request(rig)))

    def under_way() -> bool:
        latest = store.broadcasts.latest(1)
        return bool(latest) and sum(store.deliveries.counts(latest[0].id).values()) > 0

    await wait_until(under_way, "the broadcast under way")
    first.kill()
    result = await running
    states = {d.device_id: d.state for d in store.deliveries.of(result.broadcast_id)}
    assert len(states) == CLUSTERS and set(states.values()) == {FINISHED}, states
    plays = {device_id: len(d.output.started_ms) for device_id, d in rig.fleet.devices.items()}
    assert set(plays.values()) == {1}, plays  # everyone played it, nobody twice
    assert rig.controller.link.address.port != first.port
    assert all(d.agent.link.address.port != first.port for d in rig.fleet.devices.values())


def test_nodes_get_ports_no_outgoing_connection_can_take_while_they_are_down() -> None:
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    ports = [p for c in cluster_configs() for p in (c.port, c.cluster_port, c.mqtt_port)]
    assert len(set(ports)) == 9 and all(p < low for p in ports)  # a restart finds them free


def test_topics_map_to_subjects_and_back() -> None:
    assert subject_of(topics.ALL_STATUS) == "pa.v1.dev.*.status"
    assert subject_of("pa/v1/#") == "pa.v1.>"
    assert topic_of("pa.v1.dev.st-01.evt") == "pa/v1/dev/st-01/evt"


async def test_two_controllers_share_ingestion_through_a_jetstream_work_queue(nats: NatsCluster) -> None:
    for node in nats.nodes:
        node.start().wait_serving()
    await nats.wait_ready()
    got: Observed[tuple[int, Incoming]] = Observed()
    servers = [node.nats_url for node in nats.nodes]
    wanted = [topics.ALL_STATUS, topics.ALL_EVENTS]
    members = [SharedIngest(servers[i:] + servers[:i], _into(got, i), wanted, batch=8) for i in (0, 1)]
    node = nats.nodes[1]
    publisher = Link(BrokerAddress(node.host, node.port), _nothing, client_id="publisher")
    sent = [f"payload-{n}".encode() for n in range(200)]
    async with asyncio.TaskGroup() as tg:
        # Retried as the controller does: JetStream may still elect leaders after a node's restart.
        tasks = [tg.create_task(through_outages(m.run, "ingestion", Backoff(None))) for m in members]
        tasks.append(tg.create_task(publisher.run()))
        for member in members:
            await asyncio.wait_for(member.ready.wait(), 30)
        await publisher.wait_connected(30)
        # One burst, as a fleet's heartbeats come: both members have a fetch waiting for it.
        await asyncio.gather(
            *(publisher.publish(topics.device_status(f"d{n % 7}"), p) for n, p in enumerate(sent))
        )
        await got.wait_for(lambda items: len(items) >= len(sent), "every status ingested")
        for task in tasks:
            task.cancel()
    assert sorted(m.payload for _, m in got.items) == sorted(sent)  # each to exactly one controller
    assert {i for i, _ in got.items} == {0, 1}  # and both took a share
    assert all(m.topic.startswith("pa/v1/dev/d") for _, m in got.items)


class _LateProbe:
    """A pull subscription whose fetch times out as nats-py's does when its no-wait probe is answered late."""

    async def fetch(self, batch: int, timeout: float) -> list[object]:
        raise TimeoutError  # asyncio's, not nats.errors.TimeoutError


async def test_an_idle_fetch_is_no_failure_whichever_timeout_nats_py_raises() -> None:
    member = SharedIngest(["nats://127.0.0.1:4222"], _nothing, [topics.ALL_STATUS])
    await member._take(_LateProbe())  # type: ignore[arg-type]  # before: raised, tearing the session down
    assert member.handled == 0


async def test_ingestion_gives_up_on_an_unreachable_nats_with_a_link_error() -> None:
    # nats-py alone would try the servers for ever, never returning to its caller.
    member = SharedIngest(
        [f"nats://127.0.0.1:{free_port()}"], _nothing, [topics.ALL_STATUS], connect_patience_s=1
    )
    with pytest.raises(LinkError, match="cannot reach NATS"):
        await member.run()


async def test_a_controller_runs_on_while_the_nats_it_ingests_through_is_unreachable(
    mosquitto: MosquittoProcess, tmp_path: Path
) -> None:
    settings = Settings(
        data_dir=tmp_path, broker=mosquitto.url, ingest_nats=f"nats://127.0.0.1:{free_port()}"
    )
    controller = Controller(settings, open_store(settings))
    retries: Observed[logging.LogRecord] = Observed()
    handler = _Observing(retries)
    logging.getLogger("speakerctl.retry").addHandler(handler)
    try:
        async with controller.running():
            waiting = lambda records: any("ingestion through NATS" in r.getMessage() for r in records)  # noqa: E731
            await retries.wait_for(waiting, "the ingestion's first retry", 60)
            await controller.link.publish("pa/v1/probe", b"")  # its MQTT side still serves
    finally:
        logging.getLogger("speakerctl.retry").removeHandler(handler)


class _Observing(logging.Handler):
    def __init__(self, into: Observed[logging.LogRecord]) -> None:
        super().__init__()
        self._into = into

    def emit(self, record: logging.LogRecord) -> None:
        self._into.add(record)


def _into(got: Observed[tuple[int, Incoming]], member: int) -> Callable[[Incoming], Awaitable[None]]:
    async def handle(message: Incoming) -> None:
        got.add((member, message))
        # A member stays busy until the other has had a message: meanwhile JetStream hands the rest
        # to the other, as it would while one controller is slow or gone.
        await got.wait_for(lambda items: {i for i, _ in items} == {0, 1}, "both members served")

    return handle


async def _nothing(_: Incoming) -> None:
    return None
