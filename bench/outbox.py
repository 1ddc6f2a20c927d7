"""Outbox benchmark: airing records delivered through the durable outbox, against plain HTTP posts.

A receiver on loopback (aiohttp) takes JSON posts. Measured in the same run:

  outbox      N items enqueued in the store (SQLite file, one transaction), then delivered by the
              `Dispatcher`: read due items, POST each with its Idempotency-Key, mark each delivered
  baseline    the same N bodies POSTed one after another on one HTTP session, nothing stored

Prints `name: value` lines:
  outbox_enqueue_per_s     items enqueued per second
  outbox_deliver_per_s     items delivered per second through the outbox
  outbox_plain_post_per_s  plain posts per second
  outbox_ratio             outbox delivery / plain posts (the price of durability per item)

Usage: .venv/bin/python bench/outbox.py [--items 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web

from speakerctl.broker.ports import free_port
from speakerctl.clock import SystemClock
from speakerctl.integrations.http import HttpClient, checked
from speakerctl.integrations.outbox import Dispatcher
from speakerctl.retry import Backoff
from speakerctl.store import NewOutboxItem, OutboxItem, Store

CHANNEL = "province:bench"


async def _receiver() -> tuple[web.AppRunner, str]:
    async def take(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"code": 0})

    app = web.Application()
    app.router.add_post("/logs", take)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}/logs"


def _body(n: int) -> dict[str, object]:
    return {"deviceCode": f"st-ke-sach-an-my-{n % 50:02d}", "programId": n, "programName": "Bản tin sáng",
            "duration": 60.0, "startTime": "2026-11-29T05:30:00+07:00", "isRelay": False}  # fmt: skip


async def run(items: int) -> dict[str, float]:
    """Both measurements; the lines to print."""
    runner, url = await _receiver()
    clock = SystemClock()
    with tempfile.TemporaryDirectory() as scratch:
        store = Store.open(f"sqlite:///{Path(scratch) / 'bench.db'}")
        now = datetime.now(UTC)
        new = [NewOutboxItem(CHANNEL, "airing", f"airing:{n}", _body(n), now) for n in range(items)]
        start = time.perf_counter()
        store.outbox.enqueue(new, now)
        enqueue_s = time.perf_counter() - start
        async with HttpClient(10) as http:

            async def send(item: OutboxItem) -> None:
                body = json.dumps(item.payload).encode()
                headers = {"Content-Type": "application/json", "Idempotency-Key": item.idempotency_key}
                checked(await http.request("POST", url, body=body, headers=headers), url)

            dispatcher = Dispatcher(store, CHANNEL, send, clock, Backoff(None))
            start = time.perf_counter()
            while (await dispatcher.deliver_due()).delivered:
                pass
            deliver_s = time.perf_counter() - start
            start = time.perf_counter()
            for n in range(items):
                checked(await http.request("POST", url, body=json.dumps(_body(n)).encode()), url)
            plain_s = time.perf_counter() - start
        assert store.outbox.summary(CHANNEL).pending == 0
        store.close()
    await runner.cleanup()
    return {
        "outbox_enqueue_per_s": items / enqueue_s,
        "outbox_deliver_per_s": items / deliver_s,
        "outbox_plain_post_per_s": items / plain_s,
        "outbox_ratio": plain_s / deliver_s,
    }


def main() -> None:
    """Parse the options, run, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=2000)
    args = parser.parse_args()
    for name, value in asyncio.run(run(args.items)).items():
        print(f"{name}: {value:.2f}" if name.endswith("ratio") else f"{name}: {value:.0f}")


if __name__ == "__main__":
    main()
