"""Health rules: pure functions from store data and a time to alert findings; `evaluate` applies them.

Every rule takes `now` and returns findings; the store opens an alert per new finding and closes the
open alerts no rule found any more, so evaluating twice in a row changes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from speakerctl.config import Settings
from speakerctl.errors import ConfigError
from speakerctl.protocol.lifecycle import FAILED, FINISHED
from speakerctl.store import AlertFinding, AlertInfo, DeliveryInfo, DeviceInfo, Store

_VERSION = re.compile(r"(\d+(?:\.\d+)+)")
NOT_A_FAULT = frozenset({"preempted", "stopped"})
"""Reasons a delivery ended without sound on purpose: an operator's stop or a higher priority."""


class AlertKind(StrEnum):
    """What an alert is about."""

    OFFLINE = "offline"
    ON_BATTERY = "on_battery"
    AMPLIFIER_FAULT = "amplifier_fault"
    FAILED_TO_SOUND = "failed_to_sound"
    CLOCK_DRIFT = "clock_drift"
    OUTDATED_FIRMWARE = "outdated_firmware"


FAULT_KINDS = frozenset({AlertKind.AMPLIFIER_FAULT, AlertKind.FAILED_TO_SOUND})
"""Alerts that mean a cluster is online but cannot sound."""


def parse_version(text: str) -> tuple[int, ...] | None:
    """The first dotted version number in `text` ("speakerctl-agent 0.1.0" → (0, 1, 0)), if any."""
    match = _VERSION.search(text)
    return tuple(int(p) for p in match.group(1).split(".")) if match else None


@dataclass(frozen=True, slots=True)
class HealthPolicy:
    """The thresholds of the rules."""

    heartbeat_timeout_s: float = 180.0
    offline_alert_s: float = 600.0
    clock_drift_ms: int = 2000
    min_firmware: tuple[int, ...] | None = None
    failed_window_s: float = 24 * 3600.0

    @classmethod
    def from_settings(cls, settings: Settings) -> HealthPolicy:
        """The policy the settings describe."""
        minimum = parse_version(settings.min_firmware) if settings.min_firmware else None
        if settings.min_firmware and minimum is None:
            raise ConfigError(f"min_firmware {settings.min_firmware!r} has no version", hint='e.g. "0.2.0"')
        return cls(
            heartbeat_timeout_s=settings.heartbeat_timeout_s,
            offline_alert_s=settings.offline_alert_min * 60,
            clock_drift_ms=settings.clock_drift_ms,
            min_firmware=minimum,
        )


def is_online(device: DeviceInfo, now: datetime, policy: HealthPolicy) -> bool:
    """Online by its last status (or Last Will) and heard from within the heartbeat timeout."""
    if not device.online or device.last_seen is None:
        return False
    return now - device.last_seen <= timedelta(seconds=policy.heartbeat_timeout_s)


def offline(device: DeviceInfo, now: datetime, policy: HealthPolicy) -> AlertFinding | None:
    """Offline for longer than the policy allows (a device never heard from counts)."""
    if is_online(device, now, policy):
        return None
    if device.last_seen is None:
        return AlertFinding(AlertKind.OFFLINE, device.id, "never heard from")
    silent = now - device.last_seen
    if silent <= timedelta(seconds=policy.offline_alert_s):
        return None
    return AlertFinding(AlertKind.OFFLINE, device.id, f"last heard {_ago(silent)} ago")


def on_battery(device: DeviceInfo, now: datetime, policy: HealthPolicy) -> AlertFinding | None:
    """Running on its battery (mains lost), while online."""
    if device.power_source != "battery" or not is_online(device, now, policy):
        return None
    level = "" if device.battery_pct is None else f", {device.battery_pct} % left"
    return AlertFinding(AlertKind.ON_BATTERY, device.id, f"on battery{level}")


def amplifier_fault(device: DeviceInfo, now: datetime, policy: HealthPolicy) -> AlertFinding | None:
    """The amplifier or horn line reports a fault."""
    if device.amplifier != "fault" or not is_online(device, now, policy):
        return None
    return AlertFinding(AlertKind.AMPLIFIER_FAULT, device.id, "amplifier or line fault")


def clock_drift(device: DeviceInfo, now: datetime, policy: HealthPolicy) -> AlertFinding | None:
    """The device's clock is further from true time than the threshold."""
    offset = device.clock_offset_ms
    if offset is None or abs(offset) <= policy.clock_drift_ms or not is_online(device, now, policy):
        return None
    return AlertFinding(AlertKind.CLOCK_DRIFT, device.id, f"clock off by {offset:+d} ms")


def outdated_firmware(device: DeviceInfo, now: datetime, policy: HealthPolicy) -> AlertFinding | None:
    """Firmware older than the configured minimum."""
    if policy.min_firmware is None or not device.firmware:
        return None
    version = parse_version(device.firmware)
    if version is None or version >= policy.min_firmware:
        return None
    minimum = ".".join(map(str, policy.min_firmware))
    return AlertFinding(AlertKind.OUTDATED_FIRMWARE, device.id, f"{device.firmware} < {minimum}")


DEVICE_RULES = (offline, on_battery, amplifier_fault, clock_drift, outdated_firmware)


def device_findings(device: DeviceInfo, now: datetime, policy: HealthPolicy) -> list[AlertFinding]:
    """What every device rule finds wrong with `device` at `now`."""
    return [f for rule in DEVICE_RULES if (f := rule(device, now, policy)) is not None]


def failed_to_sound(deliveries: Iterable[DeliveryInfo]) -> list[AlertFinding]:
    """Devices whose latest accepted broadcast (of `deliveries`, oldest first) did not sound."""
    latest: dict[str, DeliveryInfo] = {}
    for delivery in deliveries:
        if delivery.accepted_at is not None:
            latest[delivery.device_id] = delivery
    findings = []
    for device_id, d in sorted(latest.items()):
        if d.state is FINISHED or d.reason in NOT_A_FAULT:
            continue
        if d.state is FAILED or d.playing_at is None:
            why = f"{d.state}/{d.reason}" if d.reason else d.state
            findings.append(AlertFinding(AlertKind.FAILED_TO_SOUND, device_id, f"{d.broadcast_id}: {why}"))
    return findings


def findings(
    devices: Sequence[DeviceInfo], deliveries: Sequence[DeliveryInfo], now: datetime, policy: HealthPolicy
) -> list[AlertFinding]:
    """Everything the rules find wrong with the fleet at `now`."""
    found = [f for d in devices for f in device_findings(d, now, policy)]
    return found + failed_to_sound(deliveries)


def evaluate(store: Store, now: datetime, policy: HealthPolicy) -> tuple[list[AlertInfo], list[AlertInfo]]:
    """Apply every rule to the store's data and sync the alerts table: (opened, closed)."""
    devices = store.devices.all()
    deliveries = store.deliveries.ended_since(now - timedelta(seconds=policy.failed_window_s))
    return store.alerts.sync(findings(devices, deliveries, now, policy), set(AlertKind), now)


def _ago(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours < 48 else f"{hours // 24} days"
