"""Several controllers on one PostgreSQL: leases and fencing tokens, occurrence claims, takeovers,
and status ingestion split between controllers by an MQTT shared subscription (real Mosquitto)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fleet_small import NOW, context
from waiting import wait_until

from speakerctl.app.coordination import Coordinator
from speakerctl.broker.address import BrokerAddress
from speakerctl.broker.link import Link
from speakerctl.broker.mosquitto import MosquittoProcess
from speakerctl.controller.resume import unfinished
from speakerctl.controller.service import Controller
from speakerctl.controller.session import Session
from speakerctl.errors import AlreadyClaimed, FencedOut, NotFound
from speakerctl.protocol import Status, codec, topics
from speakerctl.store import LEADER, AlertFinding, BroadcastState, Claim, Fence, Store, member_lease

pytestmark = pytest.mark.postgres
TTL_S = 30.0
"""Long enough that no lease lapses by itself during a test: they change hands by `release`."""
AIR = datetime(2026, 11, 30, 1, 5, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path, postgres_url: str) -> Store:
    ctx = context(tmp_path, postgres_url)
    return ctx.store()


def _bulletin(store: Store) -> int:
    return store.bulletins.add("tin", "ab" * 32, "opus", "ogg", 24, 1000, 100, "x", "x", NOW).id


def _create(store: Store, broadcast_id: str, fence: Fence | None, claim: Claim | None = None) -> None:
    bulletin = _bulletin(store)
    at = NOW
    store.broadcasts.create(
        broadcast_id, bulletin, 1, ["c1"], ["c1-01", "c1-02"], at, at, at + timedelta(hours=1),
        owner=fence.holder if fence else "", fence=fence, claim=claim,
    )  # fmt: skip


def test_controllers_evaluating_the_alert_rules_at_once_open_each_alert_once_without_failing(
    store: Store,
) -> None:
    """Every controller runs the rules; two opening the same alert at once broke the second's round."""
    rounds, members = 10, 4
    start = threading.Barrier(members)
    failures: list[BaseException] = []

    def evaluate(n: int) -> None:
        try:
            for k in range(rounds):
                start.wait()
                store.alerts.sync([AlertFinding(f"kind-{k}", "c1-01")], {f"kind-{k}"}, NOW)
        except BaseException as exc:  # the test reads them below
            failures.append(exc)
            start.abort()

    threads = [threading.Thread(target=evaluate, args=(n,)) for n in range(members)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    opened = store.alerts.all(open_only=True)
    assert sorted(a.kind for a in opened) == sorted(f"kind-{k}" for k in range(rounds))


def test_a_lease_is_held_by_one_controller_and_its_token_grows_with_each_acquisition(store: Store) -> None:
    leases = store.leases
    first = leases.acquire(LEADER, "ctl-a", TTL_S)
    assert first is not None
    assert leases.acquire(LEADER, "ctl-b", TTL_S) is None
    assert leases.acquire(LEADER, "ctl-a", TTL_S) == first  # a renewal keeps the token
    leases.release(LEADER, "ctl-a")
    second = leases.acquire(LEADER, "ctl-b", TTL_S)
    assert second == first + 1
    assert leases.current(LEADER) == ("ctl-b", second)
    assert leases.acquire(LEADER, "ctl-a", TTL_S) is None


def test_a_fenced_out_controller_cannot_start_a_broadcast_and_nothing_of_it_is_stored(store: Store) -> None:
    token = store.leases.acquire(LEADER, "ctl-a", TTL_S)
    assert token is not None
    stale = Fence(LEADER, "ctl-a", token)
    _create(store, "bc-current", stale)  # current: accepted
    store.leases.release(LEADER, "ctl-a")
    assert store.leases.acquire(LEADER, "ctl-b", TTL_S) == token + 1
    with pytest.raises(FencedOut):
        _create(store, "bc-stale", stale)
    with pytest.raises(NotFound):
        store.broadcasts.get("bc-stale")
    assert store.broadcasts.get("bc-current").owner == "ctl-a"


def test_a_lapsed_lease_is_no_fence_even_before_another_controller_takes_it(store: Store) -> None:
    token = store.leases.acquire(LEADER, "ctl-a", TTL_S)
    assert token is not None
    store.leases.release(LEADER, "ctl-a")
    with pytest.raises(FencedOut):
        _create(store, "bc-lapsed", Fence(LEADER, "ctl-a", token))


def test_an_occurrence_is_claimed_once(store: Store) -> None:
    token = store.leases.acquire(LEADER, "ctl-a", TTL_S)
    assert token is not None
    fence, claim = Fence(LEADER, "ctl-a", token), Claim("sch-1", AIR)
    assert store.broadcasts.claim(claim, "bc-1", fence) == "bc-1"
    assert store.broadcasts.claim(claim, "bc-2", fence) == "bc-1"
    _create(store, "bc-1", fence, claim)
    with pytest.raises(AlreadyClaimed):
        _create(store, "bc-2", fence, claim)
    # The next leader finds it claimed by a broadcast that exists: it does not send it again.
    store.leases.release(LEADER, "ctl-a")
    later = store.leases.acquire(LEADER, "ctl-b", TTL_S)
    assert later is not None
    assert store.broadcasts.claim(claim, "bc-3", Fence(LEADER, "ctl-b", later)) == "bc-1"


def test_a_claim_whose_claimant_lost_the_lease_before_sending_goes_to_the_next_leader(store: Store) -> None:
    token = store.leases.acquire(LEADER, "ctl-a", TTL_S)
    assert token is not None
    claim = Claim("sch-1", AIR)
    assert store.broadcasts.claim(claim, "bc-1", Fence(LEADER, "ctl-a", token)) == "bc-1"
    store.leases.release(LEADER, "ctl-a")  # ctl-a died between the claim and the broadcast
    later = store.leases.acquire(LEADER, "ctl-b", TTL_S)
    assert later is not None
    fence = Fence(LEADER, "ctl-b", later)
    assert store.broadcasts.claim(claim, "bc-2", fence) == "bc-2"
    with pytest.raises(FencedOut):  # ctl-a, back, cannot send it under its old token
        _create(store, "bc-1", Fence(LEADER, "ctl-a", token), claim)
    _create(store, "bc-2", fence, claim)
    assert store.broadcasts.get("bc-2").state is BroadcastState.RUNNING


def test_only_a_lapsed_controllers_broadcast_is_taken_over_and_only_under_the_current_lease(
    store: Store,
) -> None:
    for holder in ("ctl-a", "ctl-b"):
        assert store.leases.acquire(member_lease(holder), holder, TTL_S) is not None
    token = store.leases.acquire(LEADER, "ctl-b", TTL_S)
    assert token is not None
    leader = Fence(LEADER, "ctl-b", token)
    _create(store, "bc-a", Fence(member_lease("ctl-a"), "ctl-a", 1))
    assert not store.broadcasts.take_over("bc-a", "ctl-a", "ctl-b", leader)  # ctl-a is alive
    store.leases.release(member_lease("ctl-a"), "ctl-a")
    assert store.leases.lapsed_members() == {"ctl-a"}
    with pytest.raises(FencedOut):
        store.broadcasts.take_over("bc-a", "ctl-a", "ctl-c", Fence(LEADER, "ctl-c", token + 1))
    assert store.broadcasts.take_over("bc-a", "ctl-a", "ctl-b", leader)
    assert store.broadcasts.get("bc-a").owner == "ctl-b"
    assert not store.broadcasts.take_over("bc-a", "ctl-a", "ctl-b", leader)  # not twice


def test_a_play_is_stamped_again_before_its_publish_only_while_its_sender_owns_it(store: Store) -> None:
    """The resumed play is rebuilt from the stored issued_at: a takeover and the sender's new stamp
    must agree on one, whichever comes first."""
    for holder in ("ctl-a", "ctl-b"):
        assert store.leases.acquire(member_lease(holder), holder, TTL_S) is not None
    token = store.leases.acquire(LEADER, "ctl-b", TTL_S)
    assert token is not None
    _create(store, "bc-a", Fence(member_lease("ctl-a"), "ctl-a", 1))
    later = NOW + timedelta(milliseconds=250)
    assert not store.broadcasts.reissue("bc-a", "ctl-b", later)  # not ctl-b's
    assert store.broadcasts.get("bc-a").issued_at == NOW
    assert store.broadcasts.reissue("bc-a", "ctl-a", later)
    assert store.broadcasts.get("bc-a").issued_at == later
    store.leases.release(member_lease("ctl-a"), "ctl-a")
    assert store.broadcasts.take_over("bc-a", "ctl-a", "ctl-b", Fence(LEADER, "ctl-b", token))
    assert not store.broadcasts.reissue("bc-a", "ctl-a", later + timedelta(seconds=1))  # too late
    assert store.broadcasts.get("bc-a").issued_at == later


def test_a_play_is_recorded_published_only_by_its_owner_while_it_runs(store: Store) -> None:
    assert store.leases.acquire(member_lease("ctl-a"), "ctl-a", TTL_S) is not None
    _create(store, "bc-a", Fence(member_lease("ctl-a"), "ctl-a", 1))
    assert store.broadcasts.get("bc-a").published_at is None
    store.broadcasts.published("bc-a", "ctl-b", NOW)  # not ctl-b's
    assert store.broadcasts.get("bc-a").published_at is None
    store.broadcasts.published("bc-a", "ctl-a", NOW)
    assert store.broadcasts.get("bc-a").published_at == NOW
    store.broadcasts.finish("bc-a", BroadcastState.COMPLETE, NOW + timedelta(seconds=1))
    store.broadcasts.published("bc-a", "ctl-a", NOW + timedelta(seconds=2))  # ended: unchanged
    assert store.broadcasts.get("bc-a").published_at == NOW


def _status(device_id: str, n: int) -> bytes:
    return codec.encode(Status(device_id, True, 1_000 + n, firmware="0.1.0", model="ipc-4g-30w"))


async def test_a_shared_subscription_splits_status_ingestion_between_controllers(
    tmp_path: Path, postgres_url: str, mosquitto: MosquittoProcess
) -> None:
    controllers = []
    for name in ("ctl-a", "ctl-b"):
        (tmp_path / name).mkdir()
        ctx = context(tmp_path / name, postgres_url, broker=mosquitto.url, shared_group="speakerctl")
        controllers.append(Controller(ctx.settings, ctx.store(), session=Session(name, persistent=True)))
    sender = Link(BrokerAddress.parse(mosquitto.url), lambda _m: asyncio.sleep(0), client_id="sender")
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(sender.run())
        await sender.wait_connected(10)
        async with controllers[0].running(), controllers[1].running():
            for n in range(40):
                device = f"c{n % 3 + 1}-0{n % 2 + 1}"
                await sender.publish(topics.device_status(device), _status(device, n))
            counts = lambda: [c.ingestor.counters.statuses for c in controllers]  # noqa: E731
            await wait_until(lambda: sum(counts()) >= 40, "40 statuses ingested")
            await asyncio.gather(*(c.ingestor.flush() for c in controllers))
        task.cancel()
    assert sum(counts()) == 40, counts()
    assert min(counts()) > 0, counts()  # each controller took a share
    seen = {d.id: d.status_ts for d in controllers[0].store.devices.all()}
    assert all(ts is not None for ts in seen.values()), seen


class Runs:
    """A stand-in for the schedule runner: records when a coordinator starts and stops leading."""

    def __init__(self) -> None:
        self.entered: list[int] = []
        self.exited: list[int] = []
        self.following: set[str] = set()

    @asynccontextmanager
    async def scheduled(self, fence: Fence) -> AsyncIterator[Runs]:
        self.entered.append(fence.token)
        try:
            yield self
        finally:
            self.exited.append(fence.token)


def _coordinator(tmp_path: Path, postgres_url: str, name: str) -> tuple[Coordinator, Runs]:
    (tmp_path / name).mkdir()
    ctx = context(tmp_path / name, postgres_url, lease_ttl_s=60.0, lease_renew_s=30.0)
    controller = Controller(ctx.settings, ctx.store(), session=Session(name, persistent=True))
    runs = Runs()
    return Coordinator(controller, runs.scheduled), runs  # type: ignore[arg-type]


async def test_a_leader_whose_lease_was_taken_is_fenced_out_of_a_takeover_and_steps_down(
    tmp_path: Path, postgres_url: str
) -> None:
    a, a_runs = _coordinator(tmp_path, postgres_url, "ctl-a")
    b, b_runs = _coordinator(tmp_path, postgres_url, "ctl-b")
    store = a.running.store
    async with asyncio.TaskGroup() as tg:
        await a.renew(tg)
        await b.renew(tg)
        await wait_until(lambda: a_runs.entered == [1], "ctl-a leading")
        assert a.leader is not None and b.leader is None
        # ctl-a stalls past its lease; ctl-b leads under the next token.
        store.leases.release(LEADER, "ctl-a")
        await b.renew(tg)
        await wait_until(lambda: b_runs.entered == [2], "ctl-b leading")
        # A broadcast of a dead controller: ctl-a, still believing it leads, may not take it.
        assert store.leases.acquire(member_lease("ctl-z"), "ctl-z", TTL_S) is not None
        _create(store, "bc-z", Fence(member_lease("ctl-z"), "ctl-z", 1))
        store.leases.release(member_lease("ctl-z"), "ctl-z")
        with pytest.raises(FencedOut):
            await a.take_over(a.leader, tg)
        assert store.broadcasts.get("bc-z").owner == "ctl-z"
        await a.renew(tg)  # its next round finds the lease another's: it steps down
        assert a.leader is None and a_runs.exited == [1]
        assert b.leader is not None
        assert await b.take_over(b.leader, tg) == ["bc-z"]
        for task in list(b.tasks):
            task.cancel()
        await b._step_down("the test ends")
    assert b_runs.exited == [2]
    assert store.broadcasts.get("bc-z").owner == "ctl-b"


async def test_resume_leaves_alone_the_broadcasts_a_live_controller_follows(
    tmp_path: Path, postgres_url: str
) -> None:
    a, _ = _coordinator(tmp_path, postgres_url, "ctl-a")
    store = a.running.store
    for holder in ("ctl-a", "ctl-z"):
        token = store.leases.acquire(member_lease(holder), holder, TTL_S)
        assert token is not None
        _create(store, f"bc-{holder}", Fence(member_lease(holder), holder, token))
    store.leases.release(member_lease("ctl-z"), "ctl-z")
    assert [b.id for b in await unfinished(a.running, ahead=True)] == ["bc-ctl-z"]
    assert [b.id for b in await unfinished(a.running, owner="ctl-a", ahead=True)] == ["bc-ctl-a"]
