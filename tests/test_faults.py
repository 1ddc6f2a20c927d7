"""Reliability under injected faults: lossy links, clusters offline during a broadcast, a full disk."""

from __future__ import annotations

import asyncio
import hashlib
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text
from waiting import POLL_S, SAFETY_NET_S

from simulator.faults import FaultProfile, FleetRunner
from simulator.fleet import Fleet, FleetOptions
from speakerctl.app.context import open_store
from speakerctl.broker.embedded import EmbeddedBroker
from speakerctl.broker.link import Incoming
from speakerctl.broker.mosquitto import MosquittoProcess
from speakerctl.clock import SystemClock
from speakerctl.config import Settings
from speakerctl.controller.ingest import Ingestor
from speakerctl.controller.service import BroadcastRequest, Controller
from speakerctl.errors import StoreError
from speakerctl.fleet import load_inventory, provisioning_records
from speakerctl.protocol import Status, codec, topics
from speakerctl.security.keys import load_or_create_signer, trusted_path
from speakerctl.store import Store, VariantInfo

ZONE = "st-ke-sach"


def random_bulletin(store: Store, content_dir: Path, size: int, duration_ms: int = 1000) -> int:
    """A bulletin of random bytes in two "encodings" (no audio needed to test transport)."""
    variants = []
    for codec_name, container in (("opus", "ogg"), ("mp3", "mp3")):
        data = os.urandom(size)
        sha = hashlib.sha256(data).hexdigest()
        (content_dir / sha[:2]).mkdir(parents=True, exist_ok=True)
        (content_dir / sha[:2] / f"{sha}.{container}").write_bytes(data)
        variants.append(VariantInfo(codec_name, container, 24, sha, size, duration_ms))
    first, now = variants[0], datetime.now(UTC)
    args = (first.sha256, "opus", "ogg", 24, duration_ms, size, "x", "x", now)
    return store.bulletins.add("chaos", *args, variants=variants).id


def trusted_fleet(settings: Settings, root: Path, zone: str | None = None, **options: Any) -> Fleet:
    """A simulated fleet that trusts the controller's key: the province, or the clusters under `zone`."""
    load_or_create_signer(settings.keys_dir)
    options = {"time_scale": 50, **options}
    opts = FleetOptions(root=root, trust_file=trusted_path(settings.keys_dir), **options)
    inventory = load_inventory()
    clusters = provisioning_records(inventory)
    if zone is not None:
        under = {d.id for d in inventory.devices_under(zone)}
        clusters = tuple(c for c in clusters if c.device_id in under)
    return Fleet(clusters, settings.broker_address, opts)


async def test_province_broadcast_under_5_percent_chunk_loss_completes_everywhere(tmp_path: Path) -> None:
    with EmbeddedBroker() as broker:
        settings = Settings(
            data_dir=tmp_path / "ctl", broker=broker.url, accept_window_s=2, broadcast_timeout_s=90
        )
        store = open_store(settings)
        fleet = trusted_fleet(
            settings, tmp_path / "fleet", faults=FaultProfile(chunk_loss=0.05), repair_after_s=0.5
        )
        bulletin = random_bulletin(store, settings.content_dir, 16 * 16384)  # 16 chunks
        controller = Controller(settings, store)
        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(fleet.run())
            await fleet.wait_online(60)
            async with controller.running():
                result = await controller.broadcast(BroadcastRequest(bulletin, ("soc-trang",)))
            task.cancel()
    assert result.total == len(fleet.devices) == 279
    assert result.counts == {"finished": 279}, result.counts
    dropped = sum(getattr(d.agent.link._handler, "dropped", 0) for d in fleet.devices.values())
    assert dropped > 100  # the loss was real: about 5 % of 279 x 16 frames
    assert controller.ingestor.counters.content_requests > 0


async def test_clusters_offline_during_a_broadcast_get_it_on_return_or_report_it_missed(
    tmp_path: Path, mosquitto: MosquittoProcess
) -> None:
    settings = Settings(
        data_dir=tmp_path / "ctl",
        broker=mosquitto.url,
        accept_window_s=1,
        broadcast_timeout_s=6,
        command_ttl_s=4,
    )
    store = open_store(settings)
    fleet = trusted_fleet(settings, tmp_path / "fleet", ZONE, repair_after_s=0.3)
    ids = [d.id for d in load_inventory().devices_under(ZONE)]
    back_soon, back_late = ids[:3], ids[3:5]
    bulletin = random_bulletin(store, settings.content_dir, 3 * 16384)
    controller = Controller(settings, store)
    async with FleetRunner() as runner, controller.running():
        for device in fleet.devices.values():
            runner.start(device.agent)
        await fleet.wait_online(30)
        await runner.power_cut(back_soon + back_late)
        await asyncio.sleep(0.5)
        await controller.ingestor.flush()
        broadcast = asyncio.create_task(controller.broadcast(BroadcastRequest(bulletin, (ZONE,))))
        await asyncio.sleep(1.5)
        for device_id in back_soon:  # back while the command is valid: queued by the broker
            runner.start(fleet.rebuild(device_id).agent)
        result = await broadcast
        await asyncio.sleep(0.5)  # the broadcast timed out after its 4 s lifetime
        for device_id in back_late:  # back after it expired: they say they missed it
            runner.start(fleet.rebuild(device_id).agent)
        await _until_stored(controller, result.broadcast_id, back_late, "expired")
    states = {d.device_id: d.state for d in store.deliveries.of(result.broadcast_id)}
    assert all(states[d] == "finished" for d in ids if d not in back_late), states
    assert all(states[d] == "expired" for d in back_late), {d: states[d] for d in back_late}
    assert result.counts.get("finished") == len(ids) - len(back_late)


async def _until_stored(controller: Controller, broadcast_id: str, ids: list[str], state: str) -> None:
    """Flush what the clusters reported until each of `ids` is stored in `state` (a safety net, no sleep)."""
    async with asyncio.timeout(SAFETY_NET_S):
        while True:
            await controller.ingestor.flush()
            states = {d.device_id: d.state for d in controller.store.deliveries.of(broadcast_id)}
            if all(states[d] == state for d in ids):
                return
            await asyncio.sleep(POLL_S)


async def test_a_full_disk_is_a_clear_error_and_loses_or_corrupts_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'full.db'}"
    store = open_store(Settings(data_dir=tmp_path, database_url=url))
    device = load_inventory().devices[0].id
    pages = store.engine.connect().execute(text("PRAGMA page_count")).scalar_one()
    limit = {"pages": pages}

    @event.listens_for(store.engine, "connect")
    def _cap(dbapi_conn: Any, _record: Any) -> None:  # SQLite says SQLITE_FULL, as on a full disk
        dbapi_conn.execute(f"PRAGMA max_page_count = {limit['pages']}")

    store.engine.dispose()
    statuses = [Status(device, online=True, ts_ms=i + 1, firmware="x" * 200) for i in range(2000)]
    with pytest.raises(StoreError, match="no space left on device"):
        store.statuses.apply(statuses, datetime.now(UTC))
    ingestor = Ingestor(store, SystemClock())
    for status in statuses[:50]:
        await ingestor.handle(Incoming(topics.device_status(device), codec.encode(status)))
    await ingestor.flush()  # fails, logged, and keeps the batch
    await ingestor.flush()
    assert store.devices.get(device).last_seen is None
    limit["pages"] = 1_000_000
    store.engine.dispose()
    await ingestor.flush()
    assert store.devices.get(device).last_seen is not None
    with store.engine.connect() as conn:
        assert conn.execute(text("PRAGMA integrity_check")).scalar_one() == "ok"
    store.close()
