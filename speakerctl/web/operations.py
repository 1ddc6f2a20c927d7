"""One operation of the HTTP API: its method, path, handler, inputs and answers — the route table's row.

The server registers each row (`api.Api.routes`, `public.PublicFeed.routes`) and the OpenAPI document is
built from the same rows (`openapi.document`), so what is served and what is described are one list.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from speakerctl.app.access import Actor
from speakerctl.app.views import View

log = logging.getLogger(__name__)

API_VERSION = "1.1.0"
"""The document's version: the major is the path's /api/v1; minor adds fields or operations."""
PREFIX = "/api/v1"


@dataclass(frozen=True, slots=True)
class Call:
    """A request as a handler sees it: who asks, and its validated path, query and body."""

    request: web.Request
    signed: Actor | None
    """None only for a public operation."""
    path: Any = None
    query: Any = None
    body: Any = None

    @property
    def actor(self) -> Actor:
        """The token's user (every operation but the public ones has one)."""
        assert self.signed is not None
        return self.signed


@dataclass(frozen=True, slots=True)
class Reply:
    """A handler's answer: a status and a view, a list of views, or nothing (204)."""

    status: int
    data: View | list[Any] | dict[str, Any] | None = None


Handler = Callable[[Any, Any], Awaitable[Any]]
"""An Api method (a `Call` in, a `Reply` out), or a public feed method (the request in, the response out)."""


@dataclass(frozen=True, slots=True)
class Text:
    """A body that is not JSON: bytes in one of these media types (a request body: at most `max_bytes`)."""

    media_types: tuple[str, ...]
    max_bytes: int = 0


async def read_body(request: web.Request, limit: int) -> bytes:
    """The request's body, cut at `limit + 1` bytes (so the caller can tell it was too large)."""
    data = b""
    while len(data) <= limit:
        chunk = await request.content.read(limit + 1 - len(data))
        if not chunk:
            break
        data += chunk
    return data


@dataclass(frozen=True, slots=True)
class Operation:
    """A row of the route table."""

    method: str
    path: str
    """OpenAPI style, e.g. /api/v1/devices/{id} (aiohttp reads the same syntax)."""
    name: str
    tag: str
    handler: Handler
    """The Api method; its docstring is the summary (first line) and description."""
    answers: Mapping[int, Any]
    """Status → what it carries: a model, list[model], `Text` (not JSON), or None."""
    answer_text: Mapping[int, str] = field(default_factory=dict)
    path_model: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    text: Text | None = None
    """A request body that is not JSON: the handler's `call.body` is its bytes."""
    public: bool = False
    """No token needed (the document itself, the public feed)."""


def in_background(tasks: set[asyncio.Task[Any]], work: Awaitable[Any], what: str) -> None:
    """Run `work` after the answer has gone, logged if it fails, kept in `tasks` until done (the console's
    actions and the API both answer a broadcast before following it)."""

    async def run() -> None:
        try:
            await work
        except Exception:
            log.exception("%s failed", what)

    task = asyncio.get_running_loop().create_task(run())
    tasks.add(task)
    task.add_done_callback(tasks.discard)
