"""The one bounded retry: backoff capped and jittered, and a deadline that is enforced."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from speakerctl.errors import AuthError, LinkError, OutageTooLong
from speakerctl.retry import Backoff, through_outages


class FakeTime:
    """A monotonic clock that only moves when the retry sleeps."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _failing(times: int, error: Exception) -> tuple[list[int], Callable[[], Awaitable[str]]]:
    calls: list[int] = []

    async def action() -> str:
        calls.append(1)
        if len(calls) <= times:
            raise error
        return "sent"

    return calls, action


async def test_retries_until_the_link_is_back() -> None:
    clock = FakeTime()
    calls, action = _failing(3, LinkError("down"))
    # A lambda returning a coroutine, as the callers pass, must be awaited like a coroutine function.
    result = await through_outages(
        lambda: action(), "test", Backoff(60), sleep=clock.sleep, monotonic=clock.monotonic
    )
    assert result == "sent" and len(calls) == 4
    assert len(clock.sleeps) == 3


async def test_deadline_is_enforced_with_capped_jittered_backoff() -> None:
    clock = FakeTime()
    calls, action = _failing(10**6, LinkError("down"))
    backoff = Backoff(30, first_s=0.5, max_s=4, jitter_s=1)
    with pytest.raises(OutageTooLong, match="unreachable for 30 s") as caught:
        await through_outages(action, "test", backoff, sleep=clock.sleep, monotonic=clock.monotonic)
    assert isinstance(caught.value, LinkError) and isinstance(caught.value.__cause__, LinkError)
    assert clock.now - 100.0 == pytest.approx(30)
    assert max(clock.sleeps) <= 4 + 1e-9
    assert len(set(clock.sleeps)) > 1
    assert len(calls) == len(clock.sleeps) + 1


async def test_other_errors_are_not_retried() -> None:
    clock = FakeTime()
    calls, action = _failing(1, ValueError("bug"))
    with pytest.raises(ValueError, match="bug"):
        await through_outages(action, "test", Backoff(30), sleep=clock.sleep, monotonic=clock.monotonic)
    assert len(calls) == 1 and clock.sleeps == []


async def test_no_deadline_retries_until_success() -> None:
    clock = FakeTime()
    calls, action = _failing(50, AuthError("not yet"))
    backoff = Backoff(None, max_s=2)
    assert (
        await through_outages(action, "test", backoff, sleep=clock.sleep, monotonic=clock.monotonic) == "sent"
    )
    assert len(calls) == 51 and max(clock.sleeps) <= 2
