"""The one bounded retry: rides out broker outages with capped, jittered backoff, up to a deadline.

Built on tenacity rather than a hand-written loop: it is well kept and widely used, retries
coroutines natively, has exponential backoff with jitter (so hundreds of clusters coming back
after an outage do not reconnect in step), and takes the sleep function as a hook, so tests drive
the deadline with a fake clock instead of real sleeps.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import AsyncRetrying, RetryCallState, RetryError, retry_if_exception
from tenacity.wait import wait_exponential, wait_random

from speakerctl.errors import LinkError, OutageTooLong

log = logging.getLogger(__name__)
T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Backoff:
    """How to wait between attempts, and for how long in all; `deadline_s` None: until cancelled."""

    deadline_s: float | None
    first_s: float = 0.2
    max_s: float = 5.0
    jitter_s: float = 0.2

    def __post_init__(self) -> None:
        if self.deadline_s is not None and self.deadline_s < 0:
            raise ValueError(f"deadline_s must not be negative, got {self.deadline_s}")


async def through_outages(
    action: Callable[[], Awaitable[T]],
    what: str,
    backoff: Backoff,
    *,
    sleep: Sleep = asyncio.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> T:
    """Run `action`, retrying on LinkError; OutageTooLong once `backoff.deadline_s` has passed."""
    start = monotonic()
    # The first attempt runs bare: it is every cluster's every report, and a tenacity loop per call
    # cost the simulator a third of its CPU in a fan-out (bench/fanout.py). Only a failed attempt
    # builds the loop, which takes that failure as its own first attempt: the same waits and logs.
    try:
        return await action()
    except Exception as exc:
        if not _is_outage(exc):
            raise
        failed: list[BaseException] = [exc]
    return await _retried(_failed_first(failed, action), what, backoff, start, sleep, monotonic)


def _failed_first(
    failed: list[BaseException], action: Callable[[], Awaitable[T]]
) -> Callable[[], Awaitable[T]]:
    """`action`, but its first call raises the failure already seen."""

    async def attempt() -> T:
        if failed:
            raise failed.pop()
        return await action()

    return attempt


async def _retried(
    action: Callable[[], Awaitable[T]],
    what: str,
    backoff: Backoff,
    start: float,
    sleep: Sleep,
    monotonic: Callable[[], float],
) -> T:
    jittered = wait_exponential(multiplier=backoff.first_s, max=backoff.max_s) + wait_random(
        0, backoff.jitter_s
    )

    def remaining() -> float:
        return float("inf") if backoff.deadline_s is None else backoff.deadline_s - (monotonic() - start)

    def wait(state: RetryCallState) -> float:
        return max(0.0, min(jittered(state), backoff.max_s, remaining()))

    def before_sleep(state: RetryCallState) -> None:
        outcome = state.outcome.exception() if state.outcome else None
        log.warning("%s waits for the broker (attempt %d): %s", what, state.attempt_number, outcome)

    retrying = AsyncRetrying(
        sleep=sleep,
        stop=lambda _state: remaining() <= 0,
        wait=wait,
        retry=retry_if_exception(_is_outage),
        before_sleep=before_sleep,
    )
    try:
        async for attempt in retrying:
            with attempt:
                return await action()
    except RetryError as exc:
        last = exc.last_attempt.exception()
        raise OutageTooLong(
            f"{what}: the broker stayed unreachable for {backoff.deadline_s:g} s: {last}",
            hint="check that the broker is running and reachable",
        ) from last
    raise AssertionError("unreachable: tenacity either returns an attempt or raises")


def delay_after(attempts: int, backoff: Backoff) -> float:
    """Seconds to wait after `attempts` failed attempts: the same capped, jittered exponential wait, for
    retries whose state is kept in a store (the outbox) rather than in a running loop."""
    state = RetryCallState(None, None, (), {})  # type: ignore[arg-type]  # the waits read attempt_number only
    state.attempt_number = max(1, attempts)
    exponential = wait_exponential(multiplier=backoff.first_s, max=backoff.max_s)(state)
    return float(min(exponential, backoff.max_s) + wait_random(0, backoff.jitter_s)(state))


def _is_outage(exc: BaseException) -> bool:
    """A link failure worth waiting out (not a retry that already gave up)."""
    return isinstance(exc, LinkError) and not isinstance(exc, OutageTooLong)
