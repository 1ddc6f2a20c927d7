"""Runs many cluster agents in one process against a broker, each with simulated hardware."""

from __future__ import annotations

import asyncio
import gc
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from devices.agent import AgentConfig, DeviceAgent
from devices.hardware import Hardware
from devices.identity import Installed
from devices.trust import read_trusted_keys
from simulator.conditions import FleetConditions
from simulator.faults import FaultProfile, FaultyDownlink
from simulator.hardware import SimAmplifier, SimClock, SimOutput, SimTelemetry
from speakerctl.broker.address import BrokerAddress
from speakerctl.errors import LinkError
from speakerctl.protocol.limits import COMPACT_MINOR, PROTOCOL_MINOR
from speakerctl.protocol.provisioning import Provisioning
from speakerctl.protocol.signing import TrustedKeys

log = logging.getLogger(__name__)
_CONNECT_BURST = 50


@dataclass(frozen=True, slots=True)
class FleetOptions:
    """How the simulated fleet behaves."""

    root: Path
    time_scale: float = 1.0
    seed: int = 0
    max_clock_offset_ms: int = 0
    heartbeat_s: float = 60.0
    conditions: FleetConditions = field(default_factory=FleetConditions)
    """Shares of clusters on battery, with amplifier faults or old firmware (default: none)."""
    trust_file: Path | None = None
    """The controller's public keys, as given to a cluster at provisioning; None: trust nothing."""
    faults: FaultProfile | None = None
    """Faults injected on every cluster's downlink (chunk loss, corruption, latency, bandwidth)."""
    repair_after_s: float = 2.0
    legacy: frozenset[str] = frozenset()
    """Clusters that run v1.1 firmware: no live streams, no `live` feature (protocol §18.1)."""
    full_replies: frozenset[str] = frozenset()
    """Clusters that run v1.2 firmware: every delivery state reported, no `compact` feature (§14)."""


@dataclass(slots=True)
class SimDevice:
    """One simulated cluster: its agent and the hardware a scenario can poke."""

    agent: DeviceAgent
    output: SimOutput
    amplifier: SimAmplifier
    telemetry: SimTelemetry
    clock: SimClock
    installed: Installed

    @property
    def identity(self) -> Provisioning:
        """The cluster's provisioning record."""
        return self.installed.identity


def freeze_heap() -> None:
    """Leave what the process holds now out of the cyclic collector's work for good (`gc.freeze`).

    For a process that runs a built and connected fleet until it ends: the clusters live as long as
    it does, and each full collection walked all of them again — at 5,000 clusters a process it held
    the loop for up to half a second, and the clock pings read after it gave those clusters offset
    estimates 50–550 ms late (bench/scale.py start skew). Not for a process that builds fleets again
    and again (tests): what is frozen and later becomes cyclic garbage is never collected.
    """
    gc.freeze()


class Fleet:
    """A simulated fleet: one agent per provisioned cluster, all in this process's event loop.

    A cluster given as a bare record connects to `address` (then `fallbacks`, in turn) with the keys of
    `options.trust_file`; one given with its bundle (`Installed`) connects as its bundle says: its own
    account, brokers and keys.
    """

    def __init__(
        self,
        clusters: Sequence[Provisioning | Installed],
        address: BrokerAddress,
        options: FleetOptions,
        fallbacks: Sequence[BrokerAddress] = (),
    ) -> None:
        self.address = address
        self.fallbacks = tuple(fallbacks)
        self.options = options
        rng = random.Random(options.seed)
        self._rng = rng
        self._noise = random.Random(options.seed)
        """One stream for every cluster's telemetry noise: a Random holds 2.5 KB of state."""
        self.trusted = read_trusted_keys(options.trust_file) if options.trust_file else TrustedKeys()
        installed = [self._installed(c) for c in clusters]
        self.devices = {c.identity.device_id: self._build(c, rng) for c in installed}

    def _installed(self, cluster: Provisioning | Installed) -> Installed:
        if isinstance(cluster, Installed):
            return cluster
        return Installed(cluster, (self.address, *self.fallbacks), self.trusted)

    def _build(self, installed: Installed, rng: random.Random) -> SimDevice:
        identity = installed.identity
        offset = rng.randint(-self.options.max_clock_offset_ms, self.options.max_clock_offset_ms)
        clock = SimClock(offset)
        output = SimOutput(self.options.time_scale)
        amplifier = SimAmplifier()
        rng.random()  # drawn as when each cluster had its own Random: a seed keeps its offsets and faults
        telemetry = SimTelemetry(identity.network, rng=self._noise, offset_ms=offset)
        firmware = self.options.conditions.apply(identity.device_id, self.options.seed, telemetry, amplifier)
        config = AgentConfig(
            device_id=identity.device_id,
            zones=identity.zones,
            cache_dir=self.options.root / identity.device_id,
            model=identity.model,
            heartbeat_s=self.options.heartbeat_s,
            firmware=firmware,
            trusted_keys=installed.trusted_keys,
            repair_after_s=self.options.repair_after_s,
            live=identity.device_id not in self.options.legacy,
            protocol_minor=COMPACT_MINOR - 1
            if identity.device_id in self.options.full_replies
            else PROTOCOL_MINOR,
        )
        hardware = Hardware(
            output, amplifier, telemetry, clock, identity.codecs, live=output, shared_loop=True
        )
        first, *fallbacks = installed.brokers
        agent = DeviceAgent(config, first, hardware, fallbacks)
        if self.options.faults is not None:
            faults, link_rng = self.options.faults, random.Random(rng.random())
            agent.link.wrap_handler(lambda inner: FaultyDownlink(inner, faults, link_rng))
        return SimDevice(agent, output, amplifier, telemetry, clock, installed)

    def rebuild(self, device_id: str) -> SimDevice:
        """The cluster after a power cycle: a fresh agent and hardware on the same storage."""
        old = self.devices[device_id]
        self.devices[device_id] = self._build(old.installed, self._rng)
        return self.devices[device_id]

    @property
    def online(self) -> int:
        """How many agents hold a live session."""
        return sum(d.agent.link.connected.is_set() for d in self.devices.values())

    async def run(self) -> None:
        """Run every agent until cancelled, connecting them in bursts."""
        async with asyncio.TaskGroup() as tg:
            for i, device in enumerate(self.devices.values()):
                tg.create_task(device.agent.run(), name=device.agent.config.device_id)
                if i % _CONNECT_BURST == _CONNECT_BURST - 1:
                    await asyncio.sleep(0.05)

    async def wait_online(self, timeout: float = 60.0) -> None:
        """Wait until every agent is connected, or raise LinkError."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.online < len(self.devices):
            if loop.time() > deadline:
                raise LinkError(
                    f"only {self.online} of {len(self.devices)} simulated clusters connected to "
                    f"{self.address.url} within {timeout:.0f} s"
                )
            await asyncio.sleep(0.05)
