"""The composition root: builds the clock and context, and wires a running controller.

`serve` runs the controller with its health rules, an optional front end (the web server, handed in by
the caller so this layer never imports the one above it) and the schedule runner. `demo_world` is the
demo's whole province on this machine: an embedded broker, a simulated fleet in its own process (as real
clusters would be) and a controller data directory. The benches and the tests build the same pieces here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from typing import Protocol

from devices.identity import Installed, read_bundles, read_provisioning
from simulator import part
from simulator.conditions import FleetConditions
from simulator.fleet import Fleet, FleetOptions, freeze_heap
from speakerctl.app import bulletins
from speakerctl.app.access import local_administrator
from speakerctl.app.context import AppContext
from speakerctl.app.coordination import Coordinator, coordinated
from speakerctl.app.streaming import LiveRequest, stream_live
from speakerctl.app.views import ImportedView
from speakerctl.audio import generate_speechlike
from speakerctl.broker.embedded import EmbeddedBroker
from speakerctl.clock import Clock, SystemClock
from speakerctl.config import Settings
from speakerctl.controller.clocks import ClockKeeper
from speakerctl.controller.health import HealthPolicy
from speakerctl.controller.monitor import health_loop
from speakerctl.controller.resume import resume_all, unfinished
from speakerctl.controller.service import BroadcastRequest, Controller
from speakerctl.controller.session import Session, serve_session
from speakerctl.errors import LinkError, NotFound, UsageError
from speakerctl.fleet import provisioning_records, scaled_inventory
from speakerctl.i18n import _
from speakerctl.protocol.provisioning import Provisioning
from speakerctl.scheduler.book import ScheduleBook
from speakerctl.scheduler.broadcasts import ScheduledBroadcast, ScheduledRelay
from speakerctl.scheduler.runner import ScheduleRunner
from speakerctl.security.keys import load_or_create_signer, trusted_path
from speakerctl.store import BroadcastInfo, BroadcastState, Fence, Store

log = logging.getLogger(__name__)
READY = part.READY
"""The simulated fleet prints this on stdout once every cluster is online."""
COUNTERS_EVERY_S = 30.0
"""How often `serve` logs what it ingested."""

Announce = Callable[[str], None]


def context(settings: Settings, clock: Clock | None = None) -> AppContext:
    """The context every service is given; the system clock unless one is handed in (tests pin it)."""
    return AppContext(settings, clock or SystemClock())


def controller(ctx: AppContext, store: Store | None = None, *, session: Session | None = None) -> Controller:
    """A controller over the store (the context's unless given) and clock (not yet running).

    Without `session`, a one-shot command's clean session; `serve` passes `serve_session`.
    """
    return Controller(ctx.settings, store or ctx.store(), ctx.clock, session=session)


@contextlib.asynccontextmanager
async def running_controller(ctx: AppContext, store: Store | None = None) -> AsyncIterator[Controller]:
    """A controller connected to the broker for the duration of the block."""
    async with controller(ctx, store).running() as running:
        yield running


class FrontEnd(Protocol):
    """Something served beside the controller (the web server): started, stopped, reachable at `url`."""

    @property
    def url(self) -> str:
        """Where it is reachable."""
        ...

    async def start(self) -> None:
        """Start serving."""
        ...

    async def stop(self) -> None:
        """Stop serving."""
        ...


FrontEndFactory = Callable[[Controller, HealthPolicy], FrontEnd]
Companion = Callable[[Controller], contextlib.AbstractAsyncContextManager[object]]
"""Something run beside `serve`'s controller for its whole life (the CAP feed, `app.cap_feed.watching`;
the provinces and webhooks, `app.province.alongside`), handed in by the CLI because they act through
services that themselves use this module."""


@contextlib.asynccontextmanager
async def monitored(
    running: Controller, front_end: FrontEndFactory | None = None, announce: Announce | None = None
) -> AsyncIterator[str | None]:
    """The health rules evaluated periodically and, if given, the front end; yields its URL (or None)."""
    policy = HealthPolicy.from_settings(running.settings)
    server = front_end(running, policy) if front_end else None
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(health_loop(running, policy, running.settings.health_interval_s))
        try:
            if server is not None:
                await server.start()
                if announce is not None:
                    announce(f"operator console on {server.url}")
            yield server.url if server is not None else None
        finally:
            task.cancel()
            if server is not None:
                await server.stop()


@contextlib.asynccontextmanager
async def scheduled(
    running: Controller, book: ScheduleBook, fence: Fence | None = None, **options: float
) -> AsyncIterator[ScheduleRunner]:
    """The schedule runner, turning the book's occurrences into broadcasts through a running controller.

    `fence`: the scheduler lease it runs under when several controllers share the database.
    """
    broadcasts = ControllerBroadcasts(running)
    runner = ScheduleRunner(book, running.settings, running.clock, broadcasts, fence=fence, **options)
    async with runner.running():
        yield runner


class ControllerBroadcasts:
    """The scheduler's `Broadcasts` port, implemented by a running controller."""

    def __init__(self, controller: Controller) -> None:
        self.controller = controller

    async def broadcast(self, request: ScheduledBroadcast) -> None:
        """Send the occurrence through the controller and follow it to its end."""
        await self.controller.broadcast(
            BroadcastRequest(
                request.bulletin_id,
                request.targets,
                request.priority,
                start_at=request.start_at,
                expires_at=request.expires_at,
                volume=request.volume,
                on_preempt=request.on_preempt,
                broadcast_id=request.broadcast_id,
                approved_by=request.approved_by,
                fence=request.fence,
                claim=request.claim,
            )
        )

    async def relay(self, request: ScheduledRelay) -> None:
        """Relay the station live through the controller for the occurrence's time; a station that
        drops out is waited for (silence, retries) until the programme's end."""
        live = LiveRequest(
            request.url,
            request.targets,
            request.approved_by or "scheduler",
            request.priority,
            duration_s=request.duration_s,
            fallback_s=request.duration_s,
        )
        await stream_live(self.controller, live)

    async def stop(self, broadcast_id: str) -> None:
        """Stop a broadcast sent ahead, signed by the controller, at the targets it went to."""
        await self.controller.stop(broadcast_id)

    async def stopped_by(self, broadcast_id: str) -> str | None:
        """Who stopped the broadcast as a whole, as the store recorded it (None: not stopped, or not sent:
        a run is recorded pushed before its broadcast is)."""
        try:
            info = await asyncio.to_thread(self.controller.store.broadcasts.get, broadcast_id)
        except NotFound:
            return None
        return info.stopped_by if info.state is BroadcastState.STOPPED else None


@contextlib.asynccontextmanager
async def serving(
    ctx: AppContext,
    front_end: FrontEndFactory | None = None,
    announce: Announce | None = None,
    companions: Sequence[Companion] = (),
) -> AsyncIterator[Controller]:
    """The long-running controller: broker link, ingestion, health rules, front end, schedule runner,
    and the integrations (provinces, webhooks)."""
    settings = ctx.settings
    session = serve_session(settings.data_dir, settings.client_id, settings.controller_id)
    built = controller(ctx, session=session)
    if announce is not None:
        urls = ", ".join(a.url for a in settings.broker_addresses)
        announce(f"controller on {urls}, store {built.store.where}")
    async with (
        built.running(fail_fast=False),
        monitored(built, front_end, announce),
        resumed(built),
        leading(built, ScheduleBook(built.store)),  # one engine for the controller and its book
        contextlib.AsyncExitStack() as stack,
    ):
        for companion in companions:
            await stack.enter_async_context(companion(built))
        yield built


def leading(running: Controller, book: ScheduleBook) -> contextlib.AbstractAsyncContextManager[object]:
    """The schedule runner and the clock pings: at once on SQLite (one controller); on PostgreSQL
    while this one leads (one controller pinging the fleet is enough)."""
    if not running.store.shared:
        return _leader(running, book)
    return coordinated(Coordinator(running, lambda fence: _leader(running, book, fence)))


@contextlib.asynccontextmanager
async def _leader(
    running: Controller, book: ScheduleBook, fence: Fence | None = None
) -> AsyncIterator[ScheduleRunner]:
    async with scheduled(running, book, fence) as runner, clocks_kept(running):
        yield runner


@contextlib.asynccontextmanager
async def clocks_kept(running: Controller) -> AsyncIterator[ClockKeeper | None]:
    """Every online cluster pinged every `clock_ping_s` (controller/clocks.py); None if that is 0."""
    every_s = running.settings.clock_ping_s
    if not every_s:
        yield None
        return
    keeper = ClockKeeper(running.link, running.signer, running.store, running.clock)
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(keeper.run(every_s))
        try:
            yield keeper
        finally:
            task.cancel()


@contextlib.asynccontextmanager
async def resumed(running: Controller) -> AsyncIterator[list[str]]:
    """This controller's own broadcasts left running by its last run, followed in the background.

    Listed before the schedule runner starts, so an occurrence it sends is never followed twice;
    yields their ids.
    """
    infos = await unfinished(running, owner=running.session.client_id, ahead=True)
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(_resume_logged(running, infos))
        try:
            yield [i.id for i in infos]
        finally:
            task.cancel()


async def _resume_logged(running: Controller, infos: list[BroadcastInfo]) -> None:
    if infos:
        log.warning("resuming %d broadcast(s) left running: %s", len(infos), ", ".join(i.id for i in infos))
    try:
        await resume_all(running, infos)
    except Exception:
        # One broadcast that cannot be resumed must not take `serve` down with it.
        log.exception("resuming the broadcasts left running failed")


async def serve(
    ctx: AppContext,
    front_end: FrontEndFactory | None,
    announce: Announce,
    companions: Sequence[Companion] = (),
) -> None:
    """Serve until cancelled, logging the ingestion counters now and then."""
    async with serving(ctx, front_end, announce, companions) as running:
        while True:
            await asyncio.sleep(COUNTERS_EVERY_S)
            c = running.ingestor.counters
            log.warning("ingested %d statuses, %d events; %d malformed", c.statuses, c.events, c.malformed)


def fleet_options(
    ctx: AppContext,
    *,
    cache_dir: Path | None = None,
    time_scale: float = 1.0,
    clock_offset_ms: int = 0,
    heartbeat_s: float = 60.0,
    conditions: tuple[float, float, float] = (0.0, 0.0, 0.0),
    trust: Path | None = None,
) -> FleetOptions:
    """How to run a simulated fleet; `conditions`: shares on battery, with a fault, on old firmware."""
    return FleetOptions(
        root=cache_dir or ctx.settings.data_dir / "fleet",
        time_scale=time_scale,
        max_clock_offset_ms=clock_offset_ms,
        heartbeat_s=heartbeat_s,
        conditions=FleetConditions(*conditions),
        trust_file=trust,
    )


Provisioned = tuple[Provisioning | Installed, ...]


def clusters(ctx: AppContext, count: int | None, provisioning: Path | None) -> Provisioned:
    """What each simulated cluster is told at provisioning: a file's records, or the inventory's.

    `provisioning` may also be a directory of bundles (`devices provision --bundle`): then each cluster
    connects with its own account, brokers and trusted keys. `count` cuts the inventory short or pads
    it with generated clusters (fleet-scale runs).
    """
    if provisioning is not None and provisioning.is_dir():
        return read_bundles(provisioning)
    if provisioning is not None:
        return read_provisioning(provisioning)
    inventory = ctx.inventory()
    return provisioning_records(scaled_inventory(inventory, count) if count else inventory)


async def simulate(
    ctx: AppContext,
    provisioned: Sequence[Provisioning | Installed],
    options: FleetOptions,
    ready: Callable[[int], None],
) -> None:
    """Run simulated clusters until cancelled; `ready(n)` once all n are online."""
    fleet = Fleet(provisioned, ctx.settings.broker_address, options, ctx.settings.broker_fallbacks)
    async with asyncio.TaskGroup() as tg:
        tg.create_task(fleet.run())
        await fleet.wait_online(timeout=120)
        freeze_heap()  # this process runs the fleet until it ends
        ready(len(fleet.devices))


def default_trust(settings: Settings) -> Path | None:
    """The controller's trusted-keys file, if it was provisioned."""
    path = trusted_path(settings.keys_dir)
    return path if path.exists() else None


@contextlib.contextmanager
def fleet_process(args: Sequence[str]) -> Iterator[str]:
    """Run `speakerctl ARGS` (a simulate command) in its own process; yield its ready line."""
    cmd = [sys.executable, "-m", "speakerctl", *args]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) as proc:
        try:
            yield _wait_ready(proc)
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


def part_of(provisioned: Provisioned, part: str | None) -> Provisioned:
    """The share `I/N` of a fleet one of N simulator processes runs (every N-th cluster from the I-th)."""
    if part is None:
        return provisioned
    try:
        index, count = (int(x) for x in part.split("/"))
    except ValueError:
        index, count = -1, 0
    if not 0 <= index < count:
        raise UsageError(_("--part {part} is not I/N with 0 <= I < N").format(part=part), hint="--part 0/4")
    return provisioned[index::count]


def spread_commands(
    ctx: AppContext, options: FleetOptions, count: int | None, provisioning: Path | None, processes: int
) -> list[list[str]]:
    """The command lines of `processes` light simulator processes (`simulator.part`) sharing the fleet
    `simulate` would run in one; what they share is written to a private spec file beside the caches."""
    records: tuple[Provisioning, ...] | Path
    if provisioning is not None and provisioning.is_dir():
        records = provisioning  # bundles: each process reads its own clusters' credentials
    else:  # a provisioning file, or the inventory: bare records, every one a Provisioning
        records = tuple(c for c in clusters(ctx, count, provisioning) if isinstance(c, Provisioning))
    options.root.mkdir(parents=True, exist_ok=True)
    spec = options.root / "spread.json"
    part.write_spec(spec, ctx.settings.broker_addresses, options, records)
    return [["-m", "simulator.part", str(spec), f"{i}/{processes}"] for i in range(processes)]


async def spread(commands: Sequence[Sequence[str]], ready: Callable[[int], None]) -> None:
    """Run one Python simulator process per command until cancelled; `ready(n)` once all are.

    A large fleet in one event loop measures that loop, not the controller: spread over processes, each
    cluster answers as promptly as one on its own hardware would (bench/scale.py, `simulate --processes`).
    """
    procs = _launch(commands)
    try:
        lines = [await asyncio.to_thread(_wait_ready, proc) for proc in procs]
        ready(sum(int(line.split()[1]) for line in lines))
        await asyncio.gather(*(asyncio.to_thread(proc.wait) for proc in procs))
        raise LinkError(_("a simulator process exited"))
    finally:
        _end(procs)


def _launch(commands: Sequence[Sequence[str]]) -> list[subprocess.Popen[str]]:
    return [subprocess.Popen([sys.executable, *c], stdout=subprocess.PIPE, text=True) for c in commands]


def _end(procs: Sequence[subprocess.Popen[str]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_ready(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith(READY):
            return line.strip()
    raise LinkError(f"the simulated fleet exited (code {proc.wait()}) before it was ready")


def demo_targets(ctx: AppContext, count: int | None) -> tuple[str, ...]:
    """The whole province, or just the clusters the fleet simulates (the inventory's first `count`)."""
    inventory = ctx.inventory()
    if count is None or count >= len(inventory.devices):
        return (inventory.root.id,)
    return tuple(d.id for d in inventory.devices[:count])


@contextlib.contextmanager
def demo_world(
    ctx: AppContext, root: Path, time_scale: float, count: int | None, announce: Announce
) -> Iterator[AppContext]:
    """An embedded broker and a simulated fleet process; yields the controller's context for them."""
    with contextlib.ExitStack() as stack:
        broker = stack.enter_context(EmbeddedBroker())
        announce(f"embedded MQTT broker on {broker.url}")
        settings = ctx.settings.with_overrides(
            broker=broker.url, data_dir=root / "controller", database_url="", inventory=ctx.settings.inventory
        )
        # Provisioning: the clusters get the controller's public key as a file, as real ones do.
        load_or_create_signer(settings.keys_dir, settings.signing_passphrase())
        announce(stack.enter_context(fleet_process(_fleet_args(settings, root / "fleet", time_scale, count))))
        yield AppContext(settings, ctx.clock)


def demo_bulletin(ctx: AppContext, seconds: float, root: Path) -> ImportedView:
    """A speech-like demo bulletin of `seconds`, imported into the library."""
    audio = generate_speechlike(seconds, root / "ban-tin-demo.wav")
    return bulletins.import_file(ctx, audio, "Bản tin thử nghiệm", actor=local_administrator())


def _fleet_args(settings: Settings, cache: Path, time_scale: float, count: int | None) -> list[str]:
    args = [
        "--broker",
        settings.broker,
        "simulate",
        "--cache-dir",
        str(cache),
        "--time-scale",
        str(time_scale),
    ]
    args += ["--heartbeat", "30", "--trust", str(trusted_path(settings.keys_dir))]
    return args + (["--count", str(count)] if count else [])
