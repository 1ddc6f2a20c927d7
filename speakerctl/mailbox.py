"""A small unbounded queue for one consumer: what a cluster and a link keep hundreds of in one process."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class Mailbox(Generic[T]):
    """`asyncio.Queue`'s put_nowait/get for a single consumer, at a fifth of its memory.

    An asyncio.Queue holds three deques and an Event (another deque): about 3 KB each, and the
    simulator keeps two per cluster (bench/scale.py's sim_kb_per_cluster). This holds one deque
    and, while its consumer waits, one future.
    """

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: deque[T] = deque()
        self._waiter: asyncio.Future[None] | None = None

    def __len__(self) -> int:
        return len(self._items)

    def empty(self) -> bool:
        """Whether nothing is waiting to be taken."""
        return not self._items

    def put_nowait(self, item: T) -> None:
        """Add an item and wake the consumer."""
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def get_nowait(self) -> T:
        """The oldest item; IndexError if there is none."""
        return self._items.popleft()

    async def get(self) -> T:
        """The oldest item, waiting for one; only one task may wait at a time."""
        while not self._items:
            if self._waiter is not None:
                raise RuntimeError("a Mailbox has one consumer")
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._items.popleft()
