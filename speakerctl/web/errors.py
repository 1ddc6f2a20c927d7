"""The console's answer to a refused or failed action: a page, or a fragment where htmx asked.

The status says what went wrong (403 not allowed, 404 unknown, 400 a bad value, 409 needs confirmation,
504 a cluster did not answer); the text is the error's one line and its hint, in the reader's language.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from speakerctl.errors import (
    AccessError,
    AckTimeout,
    AlertRejected,
    AwaitsApproval,
    NeedsConfirmation,
    NotFound,
    NotSignedIn,
    SpeakerctlError,
    UsageError,
)
from speakerctl.i18n import N_
from speakerctl.web.auth import VISIT
from speakerctl.web.pages import base_values
from speakerctl.web.render import catalogue, respond

STATUS: tuple[tuple[type[SpeakerctlError], int, str], ...] = (
    (NotSignedIn, 401, N_("Not signed in")),
    (AwaitsApproval, 202, N_("Waiting for approval")),
    (AccessError, 403, N_("Not allowed")),
    (NotFound, 404, N_("Not found")),
    (UsageError, 400, N_("Cannot do that")),
    (NeedsConfirmation, 409, N_("Please confirm")),
    (AlertRejected, 422, N_("Not a valid CAP alert")),
    (AckTimeout, 504, N_("No answer")),
)


def status_of(exc: SpeakerctlError) -> tuple[int, str]:
    """The HTTP status and heading for an error."""
    for kind, status, heading in STATUS:
        if isinstance(exc, kind):
            return status, heading
    return 500, N_("Something failed")


def answer_error(request: web.Request, exc: SpeakerctlError) -> web.Response:
    """The refusal as a fragment (htmx) or a page, with its status."""
    status, heading = status_of(exc)
    visit = request.get(VISIT)
    if visit is None:  # outside the console (the API): one line of text
        return web.Response(status=status, text=f"error: {exc}\n")
    values: dict[str, Any] = {"message": str(exc), "hint": exc.hint, "status": status}
    if request.headers.get("HX-Request"):
        context = base_values(request, visit, "refused") | values
        return respond(request, "parts/refusal.html", visit.lang, context, status)
    context = base_values(request, visit, "refused") | values
    context["heading"] = catalogue(visit.lang).gettext(heading)
    return respond(request, "refused.html", visit.lang, context, status)
