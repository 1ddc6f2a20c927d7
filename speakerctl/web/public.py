"""The public feed of what aired per zone, for citizens' apps: JSON and RSS 2.0, no sign-in, cacheable.

`GET /public/v1/zones/{zone}/aired.json` answers the `AiredFeedView` of `app.publicfeed`;
`GET /public/v1/zones/{zone}/aired.rss` the same items as RSS 2.0. Both are rows of `OPERATIONS`: the
same rows register them and describe them in the OpenAPI document beside /api/v1 (no token).
RSS is rendered from a Jinja2 template (templates/public/aired.rss.xml) rather than by a feed library:
Jinja2 is already the console's well-kept template engine, autoescapes what it inserts, and RSS 2.0 is
one small fixed shape, so a second dependency (feedgen, with lxml) would add nothing the template does
not do. Answers carry `Cache-Control: public, max-age`, an `ETag` (a repeat with `If-None-Match` gets
304) and CORS for web apps.
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
from speakerctl.web.apimodels import ErrorBody, ZonePath
from speakerctl.web.operations import Operation, Text

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
            for op in OPERATIONS:
                app.router.add_route(op.method, op.path, getattr(self, op.name), name=f"public-{op.name}")

    async def _feed(self, request: web.Request) -> AiredFeedView:
        zone = request.match_info["zone"]
        try:
            return await asyncio.to_thread(
                publicfeed.aired, self.store, self.settings, zone, self.clock.now()
            )
        except NotFound:
            answer = {
                "error": _("no zone {zone!r}").format(zone=zone),
                "hint": _("name the zone by its id, e.g. the commune's"),
            }
            raise web.HTTPNotFound(
                text=json.dumps(answer, ensure_ascii=False), content_type="application/json"
            ) from None

    async def aired_json(self, request: web.Request) -> web.Response:
        """What aired in a zone and the zones below it in the last 30 days, newest first (no token needed)."""
        body = json.dumps((await self._feed(request)).dump(), ensure_ascii=False).encode("utf-8")
        return self._cached(request, body, "application/json")

    async def aired_rss(self, request: web.Request) -> web.Response:
        """The same items as an RSS 2.0 feed (no token needed)."""
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


FEED_ANSWERS = {
    304: "Not modified: the client's `If-None-Match` holds the current `ETag`.",
    404: "No such zone (or the feed is switched off: `public_feed.enabled = false`).",
}
OPERATIONS: tuple[Operation, ...] = (
    Operation("GET", PREFIX + ".json", "aired_json", "public", PublicFeed.aired_json,
              {200: AiredFeedView, 304: None, 404: ErrorBody}, FEED_ANSWERS, ZonePath, public=True),
    Operation("GET", PREFIX + ".rss", "aired_rss", "public", PublicFeed.aired_rss,
              {200: Text(("application/rss+xml",)), 304: None, 404: ErrorBody}, FEED_ANSWERS, ZonePath,
              public=True),
)  # fmt: skip
"""The public feed's routes, described in the OpenAPI document with /api/v1's."""
