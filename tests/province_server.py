"""A provincial source system for the tests: a real aiohttp server on loopback, with the default profile.

It issues tokens, takes statuses and airing records (deduplicated by Idempotency-Key, counting every
delivery), serves pushed items and their audio, and takes acknowledgements. Tests stop and restart it
on the same port (an outage), refuse logins, expire tokens, or lose the answer to an accepted post.
"""

from __future__ import annotations

import json
import secrets
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from waiting import Observed

from speakerctl.broker.ports import free_port

USER, PASSWORD = "xa-an-my", "mat-khau-thu"


@dataclass
class ProvinceState:
    """What the province received, and how it should misbehave."""

    tokens: set[str] = field(default_factory=set)
    logins: int = 0
    refuse_logins: bool = False
    received: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Unique deliveries by idempotency key."""
    deliveries: Counter[str] = field(default_factory=Counter)
    """Every delivery by key, duplicates included."""
    lose_answers: set[str] = field(default_factory=set)
    """Accept a post with one of these keys once, then answer 500 as if the answer were lost."""
    inbox: list[dict[str, Any]] = field(default_factory=list)
    acks: dict[str, dict[str, Any]] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)

    def of_kind(self, prefix: str) -> dict[str, dict[str, Any]]:
        """The unique deliveries whose key starts with `prefix`."""
        return {k: v for k, v in self.received.items() if k.startswith(prefix)}


class ProvinceServer:
    """The server; `start`/`stop` may be called again (same port) to simulate an outage."""

    def __init__(self) -> None:
        self.state = ProvinceState()
        self.seen: Observed[str] = Observed()
        """Every delivery's idempotency key as it arrives, for tests to wait on."""
        self.port = free_port()
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        """Its base URL."""
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        """Listen (again) on the port."""
        app = web.Application()
        app.router.add_post("/api/v1/auth/login", self._login)
        app.router.add_post("/api/v1/devices/status", self._take)
        app.router.add_post("/api/v1/broadcast-logs", self._take)
        app.router.add_get("/api/v1/commune/inbox", self._inbox)
        app.router.add_post("/api/v1/commune/inbox/{id}/ack", self._ack)
        app.router.add_get("/files/{name}", self._file)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True).start()

    async def stop(self) -> None:
        """Stop listening: the province is unreachable."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def expire_tokens(self) -> None:
        """Every token issued so far stops working (the next call gets a 401)."""
        self.state.tokens.clear()

    def push(self, item: dict[str, Any], audio: Path) -> None:
        """Push an item whose audio is `audio`, served under /files/."""
        self.state.files[audio.name] = audio.read_bytes()
        self.state.inbox.append({**item, "fileUrl": f"{self.url}/files/{audio.name}"})

    async def _login(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.state.logins += 1
        if self.state.refuse_logins or (body.get("username"), body.get("password")) != (USER, PASSWORD):
            return web.json_response({"message": "invalid credentials"}, status=401)
        token = secrets.token_hex(8)
        self.state.tokens.add(token)
        return web.json_response({"data": {"accessToken": token, "expiresIn": 3600}})

    def _authorised(self, request: web.Request) -> bool:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        return scheme == "Bearer" and token in self.state.tokens

    async def _take(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return web.json_response({"message": "token expired"}, status=401)
        key = request.headers["Idempotency-Key"]
        self.state.deliveries[key] += 1
        self.state.received.setdefault(key, json.loads(await request.read()))
        self.seen.add(key)
        if key in self.state.lose_answers:
            self.state.lose_answers.discard(key)
            return web.json_response({"message": "gateway lost it"}, status=502)
        return web.json_response({"code": 0, "message": "ok"})

    async def _inbox(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return web.json_response({"message": "token expired"}, status=401)
        waiting = [i for i in self.state.inbox if i["id"] not in self.state.acks]
        return web.json_response({"code": 0, "data": waiting})

    async def _ack(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return web.json_response({"message": "token expired"}, status=401)
        self.state.deliveries[request.headers["Idempotency-Key"]] += 1
        self.state.acks.setdefault(request.match_info["id"], await request.json())
        self.seen.add(request.headers["Idempotency-Key"])
        return web.json_response({"code": 0})

    async def _file(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return web.json_response({"message": "token expired"}, status=401)
        return web.Response(body=self.state.files[request.match_info["name"]], content_type="audio/wav")
