"""The one HTTP client of the integrations (aiohttp), with its failures translated into RemoteErrors.

Unreachable, timed out, 5xx, 408 and 429 are `RemoteUnavailable` (the outbox tries again later); any
other 4xx is `RemoteRefused`, except 401, left to the caller (the province connector logs in again).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import aiohttp

from speakerctl.errors import RemoteRefused, RemoteUnavailable
from speakerctl.i18n import _

RETRYABLE = frozenset({408, 425, 429})


@dataclass(frozen=True, slots=True)
class Answer:
    """A response: status and body."""

    status: int
    body: bytes

    def json(self) -> Any:
        """The body as JSON; RemoteRefused if it is not."""
        try:
            return json.loads(self.body or b"null")
        except ValueError as exc:
            raise RemoteRefused(_("the answer is not JSON: {error}").format(error=exc)) from exc


class HttpClient:
    """One aiohttp session with a total timeout per request; use as an async context manager."""

    def __init__(self, timeout_s: float, user_agent: str = "speakerctl") -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._headers = {"User-Agent": user_agent}
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> HttpClient:
        self._session = aiohttp.ClientSession(timeout=self._timeout, headers=self._headers)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def request(
        self, method: str, url: str, *, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> Answer:
        """Send one request; RemoteUnavailable if it got no answer, whatever the answer's status."""
        assert self._session is not None, "use HttpClient as an async context manager"
        try:
            async with self._session.request(method, url, data=body, headers=headers) as response:
                return Answer(response.status, await response.read())
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            reason = str(exc) or type(exc).__name__
            raise RemoteUnavailable(
                _("{url} is unreachable: {reason}").format(url=url, reason=reason)
            ) from exc


def checked(answer: Answer, url: str) -> Answer:
    """`answer` if it is a success; RemoteUnavailable or RemoteRefused by its status otherwise."""
    if answer.status < 300:
        return answer
    text = answer.body[:200].decode("utf-8", "replace").strip()
    message = _("{url} answered {status}: {text}").format(url=url, status=answer.status, text=text)
    if answer.status >= 500 or answer.status in RETRYABLE:
        raise RemoteUnavailable(message)
    raise RemoteRefused(message)
