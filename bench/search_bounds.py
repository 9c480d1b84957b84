"""The widest search the bounds let through, on SQLite and PostgreSQL: 16 `where` keys, the
most a search takes, each with 1,000 values, the most a key takes, over a catalog of 20,000
runs (issue 11, item 6: before the bounds, 300 keys ran on PostgreSQL for minutes); then the
three keys of those that match, 1,000 values each; and three broad keys of one value.

    python bench/search_bounds.py [--runs 20000] [--postgres postgresql://postgres@127.0.0.1/test]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
import labledger as ll
from catalog_scale import _new_database, populate
from labledger.catalog.catalog import MAX_WHERE_KEYS, MAX_WHERE_VALUES


def widest(runs: int) -> dict[str, Any]:
    """16 keys of 1,000 values: the samples of a thousand runs, and values that every run
    (or none) has for the others."""
    where: dict[str, Any] = {"sample": [f"S-{n:06d}" for n in range(1, runs + 1, runs // 1000)]}
    where["gas"] = ["Ar", "He", "H2", *(f"gas{i}" for i in range(MAX_WHERE_VALUES - 3))]
    where["Author"] = ["labledger.bench", *(f"a{i}" for i in range(MAX_WHERE_VALUES - 1))]
    for i in range(MAX_WHERE_KEYS - len(where)):
        where[f"absent{i}"] = [f"v{j}" for j in range(MAX_WHERE_VALUES)]
    return where


def ms(la: ll.Archive, where: dict[str, Any], repeat: int = 5) -> float:
    """The median milliseconds of ``la.runs.search(where=where)``."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        la.runs.search(where=where)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20_000)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="labledger-bench-"))
    for kind in ("sqlite", "postgresql"):
        catalog = _new_database(args.postgres, "ll_bench_bounds") if kind == "postgresql" else None
        la = ll.init(work / kind, catalog=catalog)
        populate(la, args.runs)
        where = widest(args.runs)
        assert len(where) == MAX_WHERE_KEYS
        assert la.runs.search(where=where) == []  # the absent keys match nothing
        matching = {k: v for k, v in where.items() if not k.startswith("absent")}
        found = len(la.runs.search(where=matching))
        first = la.runs[1].metadata
        broad = {k: v for k, v in first.items() if k in ("gas", "Author", "PXI M6251@model")}
        print(f"{kind}, {args.runs:,} runs (median of 5):")
        print(f"  16 keys x 1,000 values (nothing matches): "
              f"{ms(la, where):.0f} ms")  # fmt: skip
        print(f"  3 keys x 1,000 values ({found} runs match): "
              f"{ms(la, matching):.0f} ms")  # fmt: skip
        print(f"  3 broad keys of one value ({len(la.runs.search(where=broad))} runs match): "
              f"{ms(la, broad):.0f} ms")  # fmt: skip
        la.close()


if __name__ == "__main__":
    main()
