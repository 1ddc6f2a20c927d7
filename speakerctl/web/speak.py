""" "Speak now": a console user's browser microphone, sent over a WebSocket into the live pipeline.

The page (`/speak`) asks the browser for the microphone first; only then does it open `/speak/socket`.
The socket's first message is the request as JSON (`csrf`, `to`, `priority`, `confirmed`): the CSRF
token is checked as for a POST (a WebSocket cannot carry the header), the session comes with the
cookie, and `app.live.authorized_on` decides (the actor's zones, confirmation of an emergency). The
controller answers `{"state": "ready"}`, and the browser sends MediaRecorder's chunks as binary
messages until the stop button (`{"stop": true}`) or the page closes; either ends the stream on every
cluster. Answers: `{"state": "live", ...}` each second, `{"state": "ended", "reason": ...}`, or
`{"error": ...}` / `{"confirm": question}` before anything airs.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import WSMsgType, web

from speakerctl.app import live as live_app
from speakerctl.app.live import LiveRequest
from speakerctl.controller.live import LiveReport
from speakerctl.controller.service import Controller
from speakerctl.errors import NeedsConfirmation, SpeakerctlError, UsageError
from speakerctl.i18n import _
from speakerctl.web.auth import VISIT, Visit, signed_in
from speakerctl.web.live import LiveHub
from speakerctl.web.render import speaking

log = logging.getLogger(__name__)
STATUS_S = 1.0
"""How often the page is told the elapsed time and the clusters listening."""
REQUEST_TIMEOUT_S = 10.0
"""How long the socket waits for the request before it closes."""
MAX_CHUNK = 1 << 20
"""A MediaRecorder chunk of 200 ms is a few kB; anything near this is not speech."""


class Speak:
    """The WebSocket end of the console's "speak now" control."""

    def __init__(self, controller: Controller, hub: LiveHub) -> None:
        self.controller, self.hub = controller, hub

    def routes(self, app: web.Application) -> None:
        """Register the socket (the page is in `pages`)."""
        app.router.add_get("/speak/socket", self.socket, name="speak-socket")

    async def socket(self, request: web.Request) -> web.WebSocketResponse:
        """Take one live stream from a browser, from its request to its end."""
        visit: Visit = request[VISIT]
        ws = web.WebSocketResponse(heartbeat=20.0, max_msg_size=MAX_CHUNK)
        await ws.prepare(request)
        try:
            with speaking(visit.lang):
                live = await self._accepted(request, ws)
            if live is not None:
                await self._stream(ws, live)
        finally:
            await ws.close()
        return ws

    async def _accepted(self, request: web.Request, ws: web.WebSocketResponse) -> LiveRequest | None:
        """The authorized request, or None once the page has been told why not."""
        try:
            asked = await asyncio.wait_for(ws.receive_json(), REQUEST_TIMEOUT_S)
            return await self._authorized(request, asked)
        except NeedsConfirmation as exc:  # an emergency or a whole province: ask, then the page asks again
            await ws.send_json({"confirm": str(exc)})
        except SpeakerctlError as exc:
            await ws.send_json({"error": str(exc)})
        except (TimeoutError, TypeError, ValueError):
            await ws.send_json({"error": _("the page sent no request: reload it")})
        return None

    async def _authorized(self, request: web.Request, asked: Any) -> LiveRequest:
        visit: Visit = request[VISIT]
        if not isinstance(asked, dict) or not hmac.compare_digest(str(asked.get("csrf", "")), visit.csrf):
            raise UsageError(_("CSRF token missing or stale: reload the page"))
        actor = signed_in(request)
        plain = LiveRequest(live_app.browser(actor.name), (str(asked.get("to", "")),), actor.name)
        wanted = live_app.with_priority(plain, str(asked.get("priority", "normal")))
        confirmed = asked.get("confirmed") is True
        store = self.controller.store
        return await asyncio.to_thread(live_app.authorized_on, store, wanted, actor, confirmed=confirmed)

    async def _stream(self, ws: web.WebSocketResponse, live: LiveRequest) -> None:
        stop = asyncio.Event()
        latest: list[tuple[LiveReport, float]] = []

        def progress(report: LiveReport, elapsed_s: float) -> None:
            latest[:] = [(report, elapsed_s)]

        await ws.send_json({"state": "ready"})
        self.hub.poke()
        reporter = asyncio.get_running_loop().create_task(_report(ws, latest))
        try:
            report = await live_app.from_browser(self.controller, live, _recording(ws, stop), stop, progress)
        except SpeakerctlError as exc:
            log.warning("live from the browser of %s failed: %s", live.actor, exc)
            await _send(ws, {"error": str(exc)})
        else:
            await _send(ws, {"state": "ended", "reason": report.end_reason, "frames": report.frames})
        finally:
            reporter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reporter
            self.hub.poke()


async def _recording(ws: web.WebSocketResponse, stop: asyncio.Event) -> AsyncIterator[bytes]:
    """The browser's chunks until it asks to stop or goes away; then the stream is stopped."""
    try:
        async for message in ws:
            if message.type is WSMsgType.BINARY:
                yield message.data
            elif message.type is WSMsgType.TEXT and _asks_stop(message.data):
                return
    finally:
        stop.set()


def _asks_stop(text: str) -> bool:
    with contextlib.suppress(ValueError):
        said = json.loads(text)
        return isinstance(said, dict) and bool(said.get("stop"))
    return False


async def _report(ws: web.WebSocketResponse, latest: list[tuple[LiveReport, float]]) -> None:
    while True:
        await asyncio.sleep(STATUS_S)
        if latest:
            report, elapsed_s = latest[0]
            minutes, seconds = divmod(int(elapsed_s), 60)
            await _send(ws, {"state": "live", "elapsed": f"{minutes:02d}:{seconds:02d}",
                             "listening": report.listening})  # fmt: skip


async def _send(ws: web.WebSocketResponse, message: dict[str, Any]) -> None:
    """Tell the page, if it is still there."""
    if not ws.closed:
        with contextlib.suppress(ConnectionError):
            await ws.send_json(message)
