"""Level-4 events joined to their Level-2 parents: ``EventQuery`` (DuckDB) against pandas.

Target (issue, processing levels): associating 1,000,000 Level-4 events with their parents
among 10,000,000 Level-2 events in under 2 s, and at least 5x faster than the same join in
pandas, on this 2-core machine. Both read the same Parquet files, written with
``write_events``: 100 runs of 100,000 Level-2 events (2 streams, 2 sub-events, a few data
columns) and of 10,000 Level-4 events whose parents are random Level-2 events of their run.
Both give one row per Level-4 event with its parent's columns (checked: rows, and the sum of
the parents' energies).

    python bench/events_join.py [--runs 100] [--l2 100000] [--l4 10000] [--repeat 3]
                                [--store s3]

``--store s3`` keeps the files on moto's S3 server on loopback (use fewer runs: moto is slow).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).parent))
from labledger.events import EventFile, EventQuery, Events, event_key, write_events
from labledger.sim.objectstore import create_bucket, loopback_s3
from labledger.store import Store, open_store
from timing import median_time

STREAMS = pa.array(["InIceSplit", "IceTopSplit"])
L2_KEY = ["run", "l2_event", "l2_sub_event", "l2_stream"]
L4_PARENT = ["run", "parent_event", "parent_sub_event", "parent_stream"]


def write_campaign(
    store: Store, runs: range, l2_rows: int, l4_rows: int
) -> dict[int, list[EventFile]]:
    """Level 2 and Level 4 of every run, as a step would write them; the files by level."""
    rng = np.random.default_rng(20261101)
    files: dict[int, list[EventFile]] = {2: [], 4: []}
    for run in runs:
        i = np.arange(l2_rows)
        # each physics event split twice (sub-events) into each of two streams
        event, sub_event = i // 4, (i % 2).astype(np.int32)
        stream = pa.DictionaryArray.from_arrays(pa.array(((i // 2) % 2).astype(np.int32)), STREAMS)
        l2 = Events(
            {
                "event": event,
                "sub_event": sub_event,
                "stream": stream,
                "energy": rng.lognormal(3.0, 1.0, l2_rows),
                "zenith": rng.uniform(0, np.pi, l2_rows),
                "time": 60_000 + run + rng.uniform(0, 1, l2_rows),
                "nhits": rng.integers(8, 5_000, l2_rows, dtype=np.int32),
            },
            level=2,
        )
        pick = rng.choice(l2_rows, l4_rows, replace=False)  # random parents, in random order
        l4 = Events(
            {
                "event": event[pick],
                "sub_event": sub_event[pick],
                "stream": stream.take(pa.array(pick)),
                "parent_event": event[pick],
                "parent_sub_event": sub_event[pick],
                "bdt_score": rng.uniform(0, 1, l4_rows),
                "reco_energy": rng.lognormal(3.0, 0.5, l4_rows).astype(np.float32),
            },
            level=4,
            parent_level=2,
        )
        for ev in (l2, l4):
            product = f"bench-l{ev.level}"
            key = event_key(ev.level, run, product)
            write_events(store, key, ev.table(run))
            files[ev.level].append(EventFile(key, run, ev.level, ev.parent_level, product))
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--l2", type=int, default=100_000, help="Level-2 events per run")
    parser.add_argument("--l4", type=int, default=10_000, help="Level-4 events per run")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--store", choices=["local", "s3"], default="local")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ll-bench-events-"))
    with ExitStack() as cleanup:
        cleanup.callback(shutil.rmtree, work, ignore_errors=True)
        if args.store == "s3":
            endpoint = cleanup.enter_context(loopback_s3())
            store = open_store(
                create_bucket(endpoint, "bench") + "/archive", {"endpoint_url": endpoint}
            )
        else:
            store = open_store(work / "store")
        start = time.perf_counter()
        files = write_campaign(store, range(1000, 1000 + args.runs), args.l2, args.l4)
        n2, n4 = args.runs * args.l2, args.runs * args.l4
        print(
            f"{n2:,} level-2 and {n4:,} level-4 events in {args.runs} runs written in "
            f"{time.perf_counter() - start:.1f} s"
        )
        for level, count in ((2, n2), (4, n4)):
            size = sum(store.fs.size(store.path(f.path)) for f in files[level])
            print(f"  level {level}: {size / 1e6:.0f} MB, {size / count:.1f} bytes an event")

        query = EventQuery(store, lambda level: files.get(level, []), level=4).with_parent(2)

        def duck() -> pa.Table:
            return query.to_arrow()

        def read(level: int) -> pd.DataFrame:
            if store.local_path("") is not None:
                paths = [str(store.local_path(f.path)) for f in files[level]]
                return pq.read_table(paths, partitioning=None).to_pandas()
            tables = []
            for f in files[level]:
                with store.open_read(f.path) as fh:
                    tables.append(pq.read_table(fh))
            return pa.concat_tables(tables).to_pandas()

        def pandas_join() -> pd.DataFrame:
            # what a pandas user writes: read both levels, prefix the parent's columns, merge
            l4 = read(4)
            l2 = read(2)
            l2 = l2.rename(columns={c: f"l2_{c}" for c in l2.columns if c != "run"})
            return l4.merge(l2, how="left", left_on=L4_PARENT, right_on=L2_KEY)

        joined, merged = duck(), pandas_join()
        assert joined.num_rows == len(merged) == n4, (joined.num_rows, len(merged), n4)
        energy_duck = float(joined.column("l2_energy").to_numpy().sum())
        energy_pandas = float(merged["l2_energy"].sum())
        assert np.isclose(energy_duck, energy_pandas, rtol=1e-12), (energy_duck, energy_pandas)
        assert joined.column("l2_energy").null_count == 0  # every parent found
        t_duck = median_time(duck, args.repeat)
        t_pandas = median_time(pandas_join, args.repeat)
        print(f"{n4:,} level-4 events joined to their parents among {n2:,} level-2 events")
        print(f"{'EventQuery (DuckDB)':<24}{t_duck:>8.2f} s   (target < 2 s)")
        print(f"{'pandas merge':<24}{t_pandas:>8.2f} s")
        print(f"speed-up {t_pandas / t_duck:.1f}x (target >= 5x), store {args.store}")


if __name__ == "__main__":
    main()
