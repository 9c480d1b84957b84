"""Reading stored channels back: labledger against zarr-python on the very same arrays.

Target (issue 2): full channels and 1000 random 1 MB slices at no more than 1.25x the time of
reading the same stored arrays directly with the underlying library (zarr-python, since the
store is Zarr v3).

    python bench/read_back.py [--mb 1000] [--slices 1000] [--store s3]

``--store s3`` runs the same on moto's S3 server on loopback instead of a local folder.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import warnings
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import zarr

sys.path.insert(0, str(Path(__file__).parent))
import labledger as ll
from ingest_tdms import write_tdms
from labledger.sim.objectstore import create_bucket, loopback_s3
from timing import median_time

SLICE = 1 << 19  # int16 samples: 1 MiB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=1000.0, help="size of the TDMS file")
    parser.add_argument("--slices", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--store", choices=["local", "s3"], default="local")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="labledger-bench-"))
    with ExitStack() as cleanup:
        cleanup.callback(shutil.rmtree, work, ignore_errors=True)
        source = work / "02001_Data.tdms"
        write_tdms(source, args.mb / 1000)
        options: dict = {}
        store = None
        if args.store == "s3":
            endpoint = cleanup.enter_context(loopback_s3())
            options = {"endpoint_url": endpoint}
            store = create_bucket(endpoint, "bench") + "/archive"
        la = ll.init(work / "archive", store=store, storage_options=options)
        la.ingest([source])
        run = la.runs[-1]
        keys = sorted(run.channels)
        zstore = la.store.zarr_store()
        paths = {k: run.channels[k]._row.store_path for k in keys}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            zarrays = {k: zarr.open_array(zstore, path=paths[k], mode="r") for k in keys}
        ours = {k: run.channels[k] for k in keys}
        for k in keys:  # the same values, before any timing
            np.testing.assert_array_equal(ours[k][:1000], zarrays[k][:1000])
        n = ours[keys[0]].shape[0]
        rng = np.random.default_rng(1)
        starts = rng.integers(0, n - SLICE, args.slices)
        channel_of = rng.integers(0, len(keys), args.slices)

        def full(arrays) -> None:
            for k in keys:
                arrays[k][:]

        def slices(arrays) -> None:
            for s, c in zip(starts, channel_of):
                arrays[keys[c]][s : s + SLICE]

        full(ours), full(zarrays)  # warm the page cache and the allocator alike
        t_full = {"labledger": [], "zarr": []}
        t_slices = {"labledger": [], "zarr": []}
        for _ in range(args.repeat):  # interleaved, so both see the same machine
            t_full["labledger"].append(median_time(lambda: full(ours)))
            t_full["zarr"].append(median_time(lambda: full(zarrays)))
            t_slices["labledger"].append(median_time(lambda: slices(ours)))
            t_slices["zarr"].append(median_time(lambda: slices(zarrays)))
        mb = sum(ours[k].nbytes for k in keys) / 1e6
        fo, fz = (statistics.median(t_full[x]) for x in ("labledger", "zarr"))
        so, sz = (statistics.median(t_slices[x]) for x in ("labledger", "zarr"))
        print(f"store: {args.store}; {len(keys)} channels, {mb:,.0f} MB decoded")
        print(f"medians of {args.repeat} interleaved runs")
        print("full channels")
        print(f"  labledger    {fo:6.2f} s  {mb / fo:6.0f} MB/s")
        print(f"  zarr-python  {fz:6.2f} s  {mb / fz:6.0f} MB/s")
        print(f"  time ratio labledger / zarr-python: {fo / fz:4.2f}  (target <= 1.25)")
        print(f"{args.slices} random 1 MiB slices")
        print(f"  labledger    {so:6.2f} s  {so / args.slices * 1e3:5.2f} ms each")
        print(f"  zarr-python  {sz:6.2f} s  {sz / args.slices * 1e3:5.2f} ms each")
        print(f"  time ratio labledger / zarr-python: {so / sz:4.2f}  (target <= 1.25)")
        la.close()


if __name__ == "__main__":
    main()
