"""The public feed of what aired per zone, for citizens' apps: JSON and RSS 2.0, no sign-in, cacheable.

`GET /public/v1/zones/{zone}/aired.json` answers the `AiredFeedView` of `app.publicfeed`;
`GET /public/v1/zones/{zone}/aired.rss` the same items as RSS 2.0. RSS is rendered from a Jinja2
template (templates/public/aired.rss.xml) rather than by a feed library: Jinja2 is already the console's
well-kept template engine, autoescapes what it inserts, and RSS 2.0 is one small fixed shape, so a second
dependency (feedgen, with lxml) would add nothing the template does not do. Answers carry
`Cache-Control: public, max-age`, an `ETag` (a repeat with `If-None-Match` gets 304) and CORS for web apps.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from datetime import UTC, datetime
from email.utils import format_datetime

import jinja2
from aiohttp import web

from speakerctl.app import publicfeed
from speakerctl.app.integration_views import AiredFeedView
from speakerctl.clock import Clock
from speakerctl.config import PublicFeedSettings
from speakerctl.errors import NotFound
from speakerctl.i18n import _
from speakerctl.store import Store

PREFIX = "/public/v1/zones/{zone}/aired"
_TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("speakerctl.web", "templates/public"),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _rfc822(at: str | None) -> str:
    """An ISO 8601 time of a view as RSS writes dates (RFC 822, in GMT)."""
    return format_datetime(datetime.fromisoformat(at).astimezone(UTC), usegmt=True) if at else ""


_TEMPLATES.filters["rfc822"] = _rfc822


class PublicFeed:
    """The two routes of the feed, over the controller's store."""

    def __init__(self, store: Store, settings: PublicFeedSettings, clock: Clock) -> None:
        self.store, self.settings, self.clock = store, settings, clock

    def routes(self, app: web.Application) -> None:
        """Add the feed's routes (none when the feed is switched off)."""
        if self.settings.enabled:
            app.router.add_get(PREFIX + ".json", self._json)
            app.router.add_get(PREFIX + ".rss", self._rss)

    async def _feed(self, request: web.Request) -> AiredFeedView:
        zone = request.match_info["zone"]
        try:
            return await asyncio.to_thread(
                publicfeed.aired, self.store, self.settings, zone, self.clock.now()
            )
        except NotFound:
            raise web.HTTPNotFound(
                text=json.dumps({"error": _("no zone {zone!r}").format(zone=zone)}),
                content_type="application/json",
            ) from None

    async def _json(self, request: web.Request) -> web.Response:
        body = json.dumps((await self._feed(request)).dump(), ensure_ascii=False).encode("utf-8")
        return self._cached(request, body, "application/json")

    async def _rss(self, request: web.Request) -> web.Response:
        feed = await self._feed(request)
        body = _TEMPLATES.get_template("aired.rss.xml").render(
            feed=feed.model_dump(),
            heading=_("what aired on the loudspeakers"),
            description=_("Bulletins broadcast on the public loudspeakers of {zone}").format(zone=feed.name),
            link=str(request.url.with_path(request.path.removesuffix(".rss") + ".json").with_query(None)),
            self_url=str(request.url.with_query(None)),
            ttl=max(1, self.settings.max_age_s // 60),
        )
        return self._cached(request, body.encode("utf-8"), "application/rss+xml")

    def _cached(self, request: web.Request, body: bytes, content_type: str) -> web.Response:
        """The answer with its cache headers, or 304 if the client already holds it."""
        tag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        headers = {
            "Cache-Control": f"public, max-age={self.settings.max_age_s}",
            "ETag": tag,
            "Access-Control-Allow-Origin": "*",
            "Vary": "Accept-Encoding",
        }
        if tag in request.headers.get("If-None-Match", ""):
            return web.Response(status=304, headers=headers)
        return web.Response(body=body, content_type=content_type, charset="utf-8", headers=headers)
