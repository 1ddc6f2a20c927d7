"""The speakerctl exception tree; every error the project raises is one of these.

SpeakerctlError
├── UsageError             a value given to a command is invalid (an argument, an option, a rule)
├── ConfigError            a setting is missing or invalid
├── ProtocolError          a payload or topic breaks the wire contract (never fatal to a loop)
│   ├── PayloadTooLarge
│   └── SignatureError     a command is unsigned, signed by an unknown key, or forged
├── LinkError              the MQTT broker cannot be reached or refused us
│   ├── AuthError          wrong credentials or not authorised
│   ├── AckTimeout         the broker did not acknowledge in time
│   └── OutageTooLong      the broker stayed unreachable past a retry's deadline
├── RemoteError            another system (the province, a webhook receiver) failed or refused a request
│   ├── RemoteUnavailable  unreachable, timed out, or answered 5xx/408/429: the outbox tries again later
│   └── RemoteRefused      answered another 4xx: sending the same request again will not help
│       └── LoginRefused   the province refused our credentials
├── BrokerError            the embedded broker failed to start
├── AlertRejected          a CAP alert is too large, malformed, hostile or invalid against CAP 1.2
├── AudioError             an audio file cannot be imported
│   └── LiveSourceError    a live source cannot be read: unreachable, not audio, or stalled
│       └── SourceStalled  a live source sent nothing for too long
├── StoreError             the database cannot be read or written
│   ├── StoreUnavailable   the database is unreachable or busy: try again later, the data is fine
│   ├── NotFound           an id names nothing (device, zone, bulletin, broadcast)
│   ├── InUse              a bulletin cannot be removed while it is on air or scheduled
│   ├── FencedOut          a controller's lease was lost: its write was refused and it steps down
│   └── AlreadyClaimed     a schedule's occurrence was claimed already (by another controller)
├── AccessError            the acting user may not do this
│   ├── NotSignedIn        no user is signed in, the password is wrong, or the session expired
│   └── NotAllowed         the user's role or zone does not allow the action
│       └── AwaitsApproval the request was queued for an approver instead of acting now (nothing lost)
├── NeedsConfirmation      a wide or emergency action was not confirmed (--yes for scripts)
├── NoSpace                a disk speakerctl writes to is full
├── ContentError           device side: content failed verification or cannot be cached
└── InventoryError         a fleet inventory or hardware profile is malformed
"""

from __future__ import annotations


class SpeakerctlError(Exception):
    """Base of every error speakerctl raises on purpose."""

    hint: str = ""

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        if hint:
            self.hint = hint


class UsageError(SpeakerctlError):
    """A value given to a command is invalid: an argument, an option, a schedule rule."""


class ConfigError(SpeakerctlError):
    """A setting is missing or invalid."""


class ProtocolError(SpeakerctlError):
    """A payload or topic breaks the wire contract."""


class PayloadTooLarge(ProtocolError):
    """A payload exceeds the protocol's size limit."""


class SignatureError(ProtocolError):
    """A command's signature is missing, by an untrusted key, or does not verify."""


class LinkError(SpeakerctlError):
    """The MQTT broker cannot be reached or dropped us."""


class AuthError(LinkError):
    """The broker refused our credentials or an action."""


class AckTimeout(LinkError):
    """The broker did not acknowledge in time."""


class OutageTooLong(LinkError):
    """The broker stayed unreachable past a retry's deadline (speakerctl.retry)."""


class RemoteError(SpeakerctlError):
    """Another system reached over HTTP (the province, a webhook receiver) failed or refused a request."""


class RemoteUnavailable(RemoteError):
    """The other system is unreachable, timed out, or answered 5xx, 408 or 429; later may work."""


class RemoteRefused(RemoteError):
    """The other system refused the request (another 4xx); the same request will be refused again."""


class LoginRefused(RemoteRefused):
    """The province's source system refused our credentials."""


class BrokerError(SpeakerctlError):
    """The embedded broker could not be started."""


class AlertRejected(SpeakerctlError):
    """A CAP alert is too large, not well-formed, hostile XML (a DTD, entities) or invalid against CAP 1.2."""


class AudioError(SpeakerctlError):
    """An audio file cannot be imported or encoded."""


class LiveSourceError(AudioError):
    """A live source (relay URL, file played as live) cannot be opened, is not audio, or fails."""


class SourceStalled(LiveSourceError):
    """A live source sent no audio for longer than its stall timeout."""


class StoreError(SpeakerctlError):
    """The database cannot be read or written."""


class StoreUnavailable(StoreError):
    """The database is unreachable or busy; the same write may succeed later."""


class NotFound(StoreError):
    """An id names nothing in the store."""


class InUse(StoreError):
    """Something still needs what was to be removed (a running broadcast, a schedule)."""


class FencedOut(StoreError):
    """A write carried a lease token that is no longer current: another controller holds the lease.

    Refused in the write's own transaction, so nothing of it is stored; the controller steps down.
    """


class AlreadyClaimed(StoreError):
    """An occurrence of a schedule was claimed already: it airs once, by its claimant."""


class AccessError(SpeakerctlError):
    """The acting user may not do this."""


class NotSignedIn(AccessError):
    """No user is signed in, the credentials are wrong, or the session has expired."""


class NotAllowed(AccessError):
    """The user's role or zone scope does not allow the action."""


class AwaitsApproval(NotAllowed):
    """The request did not act now: it waits in an approval queue as the items named (exit 11)."""

    def __init__(self, message: str, items: tuple[int, ...], *, hint: str = "") -> None:
        super().__init__(message, hint=hint)
        self.items = items


class NeedsConfirmation(SpeakerctlError):
    """A province-wide or emergency action needs an explicit confirmation."""


class NoSpace(SpeakerctlError):
    """A disk speakerctl writes to is full (the data directory, scratch space, an export)."""


class ContentError(SpeakerctlError):
    """Content failed verification or cannot be cached."""


class InventoryError(SpeakerctlError):
    """A fleet inventory or hardware profile is malformed."""
