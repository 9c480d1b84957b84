"""Held notification streams against the service's latency: `/health` and a run read by a
fresh client (a new connection each time), with no stream open and with 500 held open (ten
keys of 50: the default cap is 100 a key, 1,000 in all), against `labledger serve` in its
own process. Target (issue 11, item 6): the latency with 500 streams stays near the latency
with none (it was 2 s with 150 and 15 s with 500 when each stream polled on its own).

    python bench/streams.py [--streams 500] [--requests 40]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
import labledger as ll
from labledger.access import Access
from labledger.sim import build
from remote import served


def latencies(url: str, path: str, key: str, requests: int) -> list[float]:
    """Seconds per request, each on a new connection (as a fresh client's)."""
    found = []
    fresh = httpx.Limits(max_keepalive_connections=0)
    with httpx.Client(timeout=120, limits=fresh) as client:
        for _ in range(requests):
            started = time.perf_counter()
            client.get(f"{url}{path}", headers={"Authorization": f"Bearer {key}"})
            found.append(time.perf_counter() - started)
    return found


class Held:
    """``count`` streams held open from a thread of their own, across ``keys``."""

    def __init__(self, url: str, keys: list[str], count: int):
        self.url, self.keys, self.count = url, keys, count
        self.opened, self.refused = 0, 0
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    def __enter__(self) -> Held:
        self._thread.start()
        self._ready.wait(300)
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(60)

    async def _run(self) -> None:
        limits = httpx.Limits(max_connections=self.count + 10)
        async with httpx.AsyncClient(timeout=None, limits=limits) as client:
            tasks = [asyncio.create_task(self._one(client, self.keys[i % len(self.keys)]))
                     for i in range(self.count)]  # fmt: skip
            while self.opened + self.refused < self.count:
                await asyncio.sleep(0.05)
            self._ready.set()
            while not self._stop.is_set():
                await asyncio.sleep(0.1)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _one(self, client: httpx.AsyncClient, key: str) -> None:
        headers = {"Authorization": f"Bearer {key}"}
        async with client.stream("GET", f"{self.url}/api/v1/notifications", headers=headers) as r:
            if r.status_code != 200:
                self.refused += 1
                return
            self.opened += 1
            async for _ in r.aiter_lines():
                pass


def summary(seconds: list[float]) -> str:
    ms = sorted(1e3 * s for s in seconds)
    p95 = ms[max(0, round(0.95 * len(ms)) - 1)]
    return f"median {statistics.median(ms):.1f} ms, p95 {p95:.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=500)
    parser.add_argument("--requests", type=int, default=40)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ll-bench-streams-"))
    try:
        la = ll.init(work / "archive")
        build(la, work / "daq", [1233, 1240])
        with served(la, "process") as (url, key):
            access = Access(la.catalog)
            keys = [access.create_key("bench", scopes=["read"]) for _ in range(10)]
            read = "/api/v1/runs/by-number/1233"
            quiet = {p: latencies(url, p, key, args.requests) for p in ("/api/v1/health", read)}
            with Held(url, keys, args.streams) as held:
                time.sleep(2)  # let the streams settle into their polling
                busy = {p: latencies(url, p, key, args.requests) for p in quiet}
            print(f"{held.opened} streams held, {held.refused} refused")
            for path in quiet:
                ratio = statistics.median(busy[path]) / statistics.median(quiet[path])
                print(f"{path}: 0 streams {summary(quiet[path])}; {held.opened} streams "
                      f"{summary(busy[path])}; ratio {ratio:.1f}x")  # fmt: skip
        la.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
