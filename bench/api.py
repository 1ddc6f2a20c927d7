"""HTTP API latency: /api/v1 operations with a bearer token against the old open /api/devices.

A controller's web server (not connected to a broker: reads only) on the inventory's 279 clusters,
one administrator's API token, and N sequential requests per path on one keep-alive connection.
The baseline is the unversioned `/api/devices`, served from a snapshot cached for a second; `/api/v1`
checks the token (one indexed read) and reads the store for each request.

Prints `name: value` lines: `<path>_ms` (median), `<path>_ratio` (its median over the baseline's).

Usage: .venv/bin/python bench/api.py [--requests 50]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp

from speakerctl.app import accounts, runtime, tokens
from speakerctl.app.access import local_administrator
from speakerctl.config import Settings
from speakerctl.controller.health import HealthPolicy
from speakerctl.web import WebServer

BASELINE = "api/devices"
PATHS = (
    BASELINE, "api/v1/whoami", "api/v1/devices", "api/v1/fleet", "api/v1/alerts", "api/v1/schedules",
    "api/v1/approvals", "api/v1/broadcasts",
)  # fmt: skip


def _token(settings: Settings) -> str:
    ctx = runtime.context(settings)
    admin = local_administrator()
    accounts.create_user(ctx, accounts.NewUser("bench", "administrator", None, "bench password"), actor=admin)
    return tokens.create(ctx, "bench", actor=admin).token


async def _median_ms(http: aiohttp.ClientSession, url: str, token: str, n: int) -> float:
    took = []
    for _ in range(n):
        start = time.perf_counter()
        async with http.get(url, headers={"Authorization": f"Bearer {token}"}) as response:
            await response.read()
            assert response.status == 200, (url, response.status)
        took.append((time.perf_counter() - start) * 1000)
    return statistics.median(took)


async def main(requests: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp) / "data")
        token = _token(settings)
        controller = runtime.controller(runtime.context(settings))
        server = WebServer(controller, HealthPolicy.from_settings(settings), "127.0.0.1", 0)
        await server.start()
        try:
            async with aiohttp.ClientSession() as http:
                medians = {p: await _median_ms(http, server.url + p, token, requests) for p in PATHS}
        finally:
            await server.stop()
            controller.store.close()
    for path, ms in medians.items():
        name = path.replace("/", "_")
        print(f"{name}_ms: {ms:.1f}")
        print(f"{name}_ratio: {ms / medians[BASELINE]:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=50)
    asyncio.run(main(parser.parse_args().requests))
