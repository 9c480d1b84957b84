"""Many clients at once against a server, each checking every answer it gets: slices of a
channel must be the bytes the archive holds at those offsets, searches the runs they match.
A lost, mixed or failed response is counted, never retried. For a deployment's smoke test,
the test-suite and ``bench/load.py``.

>>> report = asyncio.run(load(url, key, expected, clients=50, seconds=60))  # doctest: +SKIP
>>> report.errors, report.mismatches                                      # doctest: +SKIP
(0, 0)
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np

from labledger.wire import API, decode_array


@dataclass
class Expected:
    """What the clients check against: a run, one of its channels' values, a search and the
    run numbers it must return."""

    run: int
    channel: str
    values: np.ndarray
    search: dict[str, str]
    found: list[int]


@dataclass
class Report:
    requests: int = 0
    errors: int = 0  # an HTTP error or a failed connection
    mismatches: int = 0  # an answer that was not what was asked for
    latencies: list[float] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # the first few, to say what went wrong

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies, q)) if self.latencies else float("nan")

    def __str__(self) -> str:
        median = statistics.median(self.latencies) if self.latencies else float("nan")
        return (
            f"{self.requests} requests, {self.errors} errors, {self.mismatches} wrong answers; "
            f"latency median {1e3 * median:.1f} ms, p99 {1e3 * self.percentile(99):.1f} ms"
        )


async def load(
    url: str,
    api_key: str,
    expected: Expected,
    *,
    clients: int = 50,
    seconds: float = 60.0,
    each: int | None = None,
) -> Report:
    """``clients`` concurrent clients, each with its own connection, for ``seconds`` or, given
    ``each``, for that many requests each (a fixed amount of work, whatever the machine's speed).
    """
    report = Report()
    deadline = time.monotonic() + seconds
    headers = {"Authorization": f"Bearer {api_key}", "Accept-Encoding": "zstd, gzip"}
    path = f"{url}{API}/runs/{expected.run}/channels/{expected.channel}"
    n = len(expected.values)

    async def ask(http: httpx.AsyncClient, rng: random.Random) -> tuple[httpx.Response, bool]:
        if rng.random() < 0.75:  # three slices of random length and offset for each search
            a = rng.randrange(n)
            b = min(n, a + rng.randrange(1, 20_000))
            answer = await http.get(path, params={"slice": f"{a}:{b}"})
            got = decode_array(answer.content, answer.headers) if answer.is_success else None
            return answer, got is not None and np.array_equal(got, expected.values[a:b])
        answer = await http.get(f"{url}{API}/runs/search", params=expected.search)
        found = [r["number"] for r in answer.json()] if answer.is_success else None
        return answer, found == expected.found

    async def client(seed: int) -> None:
        rng = random.Random(seed)
        async with httpx.AsyncClient(headers=headers, timeout=60) as http:
            asked = 0
            while (asked < each) if each is not None else (time.monotonic() < deadline):
                asked += 1
                started = time.perf_counter()
                try:
                    answer, right = await ask(http, rng)
                except httpx.HTTPError as exc:
                    report.errors += 1
                    _note(report, f"client {seed}: {type(exc).__name__}: {exc}")
                    continue
                report.requests += 1
                report.latencies.append(time.perf_counter() - started)
                if not answer.is_success:
                    report.errors += 1
                    _note(report, f"client {seed}: HTTP {answer.status_code}: {answer.text[:200]}")
                elif not right:
                    report.mismatches += 1
                    _note(report, f"client {seed}: a wrong answer to {answer.url}")

    await asyncio.gather(*(client(seed) for seed in range(clients)))
    return report


def _note(report: Report, problem: Any) -> None:
    if len(report.problems) < 10:
        report.problems.append(str(problem))
