"""Load: 50 concurrent clients reading channel slices and searching for 60 s against one
server (`labledger serve`, its own process) on this machine; every answer is checked against
the archive. Target (issue 5): no errors, no lost or mixed responses.

    python bench/load.py [--clients 50] [--seconds 60]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import labledger as ll
from labledger.server.loadcheck import Expected, load
from labledger.sim import build
from remote import served


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ll-bench-load-"))
    try:
        la = ll.init(work / "archive")
        build(la, work / "daq", range(1221, 1241))
        channel = "PXI M6251/ai3"
        expected = Expected(1230, channel, la.runs[1230].channels[channel][...],
                            {"where": '{"gas": "Ar"}'}, [r.number for r in la.runs])  # fmt: skip
        with served(la, "process") as (url, key):
            started = time.perf_counter()
            report = asyncio.run(load(url, key, expected, clients=args.clients,
                                      seconds=args.seconds))  # fmt: skip
            took = time.perf_counter() - started
        print(f"{args.clients} clients for {took:.0f} s against `labledger serve`: {report}")
        p50, p99 = (1e3 * report.percentile(q) for q in (50, 99))
        print(f"{report.requests / took:.0f} requests/s; p50 {p50:.1f} ms, p99 {p99:.1f} ms")
        ok = report.errors == 0 and report.mismatches == 0 and report.requests > 0
        print("no errors, no lost or mixed responses (target: " + ("met)" if ok else "MISSED)"))
        for problem in report.problems:
            print("  ", problem)
        la.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
