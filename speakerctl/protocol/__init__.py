"""Protocol v1: the wire contract shared by the controller and the device agent (pure data, no I/O)."""

from speakerctl.protocol import chunks, codec, lifecycle, limits, topics
from speakerctl.protocol.lifecycle import DeliveryState
from speakerctl.protocol.management import Ack, Configure, Ping, Reboot, SetVolume
from speakerctl.protocol.messages import (
    Command,
    ContentRef,
    ContentRequest,
    DeliveryEvent,
    Event,
    Link,
    Play,
    Power,
    Priority,
    Reason,
    Status,
    Stop,
)
from speakerctl.protocol.schedule import PreemptPolicy

__all__ = [
    "Ack",
    "Command",
    "Configure",
    "ContentRef",
    "ContentRequest",
    "DeliveryEvent",
    "DeliveryState",
    "Event",
    "Link",
    "Ping",
    "Play",
    "Power",
    "PreemptPolicy",
    "Priority",
    "Reason",
    "Reboot",
    "SetVolume",
    "Status",
    "Stop",
    "chunks",
    "codec",
    "lifecycle",
    "limits",
    "topics",
]
