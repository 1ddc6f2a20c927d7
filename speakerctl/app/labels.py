"""Words for people, in the language in use, for the values records carry: delivery states, reasons,
priorities, zone kinds. The CLI and the web console both use these; JSON keeps the wire values.
"""

from __future__ import annotations

from typing import Final

from speakerctl.fleet import kind_name, zone_title
from speakerctl.i18n import N_, _

_WORDS: Final = {
    # delivery states (speakerctl.protocol.lifecycle)
    "pending": N_("pending"),
    "accepted": N_("accepted"),
    "content_ready": N_("content ready"),
    "playing": N_("playing"),
    "finished": N_("finished"),
    "failed": N_("failed"),
    "expired": N_("expired"),
    "unreached": N_("unreached"),
    "not_final": N_("not final yet"),
    # reasons (speakerctl.protocol.messages.Reason)
    "content_invalid": N_("content invalid"),
    "content_timeout": N_("content timed out"),
    "storage_full": N_("storage full"),
    "preempted": N_("preempted"),
    "stopped": N_("stopped"),
    "playback_error": N_("playback error"),
    "amplifier_fault": N_("amplifier fault"),
    "unsupported_codec": N_("unsupported codec"),
    "rebooted": N_("rebooted before it ended"),
    "timeout": N_("no answer in time"),  # the controller's reason for an unreached cluster
    # broadcasts as a whole (speakerctl.store.BroadcastState) and schedule runs (scheduler.model.RunState)
    "running": N_("running"),
    "complete": N_("complete"),
    "incomplete": N_("incomplete"),
    "cancelled": N_("cancelled"),
    "pushed": N_("pushed"),
    "aired": N_("aired"),
    "late": N_("late"),
    "missed": N_("missed"),
    # alert kinds (speakerctl.controller.health.AlertKind)
    "offline": N_("offline"),
    "on_battery": N_("on battery"),
    "failed_to_sound": N_("failed to sound"),
    "clock_drift": N_("clock drift"),
    "outdated_firmware": N_("outdated firmware"),
    "relay_source_away": N_("relayed station away"),
    # priorities (speakerctl.protocol.Priority)
    "normal": N_("normal"),
    "priority": N_("priority"),
    "emergency": N_("emergency"),
    # CAP alerts (speakerctl.app.cap.State; "cancelled" and "expired" above)
    "airing": N_("airing until it expires"),
    "ended": N_("aired (no expiry given)"),
    "queued": N_("waiting for approval"),
    "rehearsal": N_("rehearsal"),
    "replaced": N_("replaced by an update"),
    "applied": N_("applied"),
    "no_target": N_("no cluster in the area"),
    "ignored": N_("not for the public"),
}


def word(value: object) -> str:
    """A state, reason or priority for people ("finished" → "đã phát xong"); "failed/x" word by word."""
    text = str(value)
    return "/".join(_(_WORDS[part]) if part in _WORDS else part for part in text.split("/"))


__all__ = ["kind_name", "word", "zone_title"]
