"""The catalog's hot paths with 100,000 runs, on SQLite and on PostgreSQL.

Target (issue 2): ``la.runs[-1]``, ``la.runs[n]`` and a metadata search each under 10 ms
median. Measured through the public API, with the same queries on a 1,000-run catalog in the
same run for comparison (a flat ratio means the indexes do their job).

    python bench/catalog_scale.py [--runs 100000] [--postgres postgresql://postgres@127.0.0.1/test]

Runs are inserted straight into the catalog's tables (ingesting 100,000 files is not what is
measured here); each gets a source row and a dozen metadata keys, as a shot file has.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert

import labledger as ll
from labledger.catalog.catalog import metadata_rows
from labledger.catalog.schema import MetadataRow, run_table, source_table
from labledger.records import RunRecord

GASES = ["Ar", "He", "H2"]
BATCH = 5000


def populate(la: ll.Archive, runs: int) -> None:
    rng = random.Random(0)
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    engine = la.catalog.engine
    for first in range(1, runs + 1, BATCH):
        run_rows, source_rows, meta_rows = [], [], []
        for number in range(first, min(first + BATCH, runs + 1)):
            run_id = str(uuid.uuid4())
            started = t0 + timedelta(minutes=10 * number)
            meta = {
                "gas": GASES[number % 3],
                "operator": f"op{rng.randrange(20)}",
                "sample": f"S-{number:06d}",
                "shot": number,
                "rf_power_setpoint": float(rng.choice([1000, 1500, 2000, 3000])),
                "coil_current_setpoint": float(rng.choice([300, 400, 500])),
                "pressure_setpoint": round(rng.uniform(0.2, 1.0), 3),
                "Author": "labledger.bench",
                "name": f"shot {number}",
                "PXI M6251@model": "NI PXI-6251",
                "PXI M6251@sample_rate": 50000.0,
                "truth.T_e": rng.uniform(3, 8),
            }
            run_rows.append(
                {
                    "id": run_id,
                    "number": number,
                    "state": "closed",
                    "started": started,
                    "ended": started + timedelta(seconds=1),
                    "created": started,
                    "metadata": meta,
                    "store_prefix": f"runs/{run_id}",
                    "n_channels": 8,
                    "data_bytes": 560_000,
                }
            )
            source_rows.append(
                {
                    "run_id": run_id,
                    "position": 0,
                    "name": f"{number:06d}_Data.tdms",
                    "size": 600_000 + number,
                    "format": "tdms",
                    "sha256": uuid.uuid4().hex + uuid.uuid4().hex,
                    "store_key": f"runs/{run_id}/sources/0/{number:06d}_Data.tdms",
                    "original_path": f"/daq/{number:06d}_Data.tdms",
                    "modified": started,
                    "ingested": started,
                    "ingested_by": "bench@host",
                    "tree": {},
                    "problems": [],
                }
            )
            fields = {**run_rows[-1], "meta": run_rows[-1]["metadata"]}
            del fields["metadata"]
            row = RunRecord(**fields)
            meta_rows += [
                {
                    "run_id": m.run_id,
                    "key": m.key,
                    "text": m.text,
                    "number": m.number,
                    "started": started,
                }
                for m in metadata_rows(row)
            ]
        with engine.begin() as conn:
            conn.execute(insert(run_table), run_rows)
            conn.execute(insert(source_table), source_rows)
            conn.execute(insert(MetadataRow), meta_rows)
    with engine.begin() as conn:  # what a DBA or autovacuum does to a catalog this size
        conn.exec_driver_sql("ANALYZE")  # committed: PostgreSQL keeps no statistics rolled back


def median_ms(fn, repeat: int = 200) -> float:
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def measure(la: ll.Archive, runs: int) -> dict[str, float]:
    rng = random.Random(1)
    since = (datetime(2024, 1, 1, tzinfo=UTC) + timedelta(minutes=10 * (runs - 500))).isoformat()
    found = la.runs.search(gas="He", operator="op7", since=since)
    assert found and all(r.metadata["gas"] == "He" for r in found)
    assert [r.number for r in la.runs.search(sample=f"S-{runs // 2:06d}")] == [runs // 2]
    return {
        "la.runs[-1]": median_ms(lambda: la.runs[-1]),
        "la.runs[n]": median_ms(lambda: la.runs[rng.randrange(1, runs + 1)]),
        "search(sample=...)": median_ms(
            lambda: la.runs.search(sample=f"S-{rng.randrange(1, runs + 1):06d}")
        ),
        f"search(gas, operator, since) [{len(found)} runs]": median_ms(
            lambda: la.runs.search(gas="He", operator="op7", since=since)
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="labledger-bench-"))
    for kind in ("sqlite", "postgresql"):
        results = {}
        for runs in (args.small, args.runs):
            catalog = None
            if kind == "postgresql":
                catalog = _new_database(args.postgres, f"ll_bench_{runs}")
            la = ll.init(work / f"{kind}-{runs}", catalog=catalog)
            start = time.perf_counter()
            populate(la, runs)
            print(
                f"{kind}: {runs:,} runs inserted in {time.perf_counter() - start:.0f} s", flush=True
            )
            results[runs] = measure(la, runs)
            la.close()
        print(f"\n{kind}: median ms over 200 calls")
        print(f"  {'query':45s} {args.small:>8,} runs {args.runs:>9,} runs   ratio   target")
        for query, ms in results[args.runs].items():
            small = results[args.small][query]
            verdict = "ok" if ms < 10 else "OVER"
            print(
                f"  {query:45s} {small:8.2f} ms {ms:9.2f} ms   {ms / small:5.2f}   <10 ms {verdict}"
            )
        print()


def _new_database(admin: str, name: str) -> str:
    import psycopg

    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{admin.rsplit('/', 1)[0]}/{name}"


if __name__ == "__main__":
    main()
