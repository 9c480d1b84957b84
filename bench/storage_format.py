"""Which storage format: Zarr v3 sharded (labledger's reader and writer, and zarr-python), Zarr v3
without shards, and HDF5 (h5py with blosc-lz4, and with gzip), on a local disk and on S3.

The figures behind docs/storage-format.md:

    python bench/storage_format.py [--mb 512] [--slices 500] [--s3]

Every format stores the same int16 ADC-like signal in 1 MiB chunks; each reads back the same
random 1 MiB slices. Runs are interleaved and medians reported.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import h5py
import hdf5plugin
import numpy as np
import zarr
from zarr.codecs import BloscCodec

from labledger.sim.objectstore import create_bucket, loopback_s3
from labledger.store import ArrayWriter, open_array, open_store

sys.path.insert(0, str(Path(__file__).parent))
from timing import median_time

CHUNK = 1 << 19  # int16 values: 1 MiB
SHARD = 64 * CHUNK
LZ4 = {"cname": "lz4", "clevel": 5, "shuffle": "shuffle"}


def signal(mb: float) -> np.ndarray:
    n = int(mb * 1e6) // 2
    rng = np.random.default_rng(0)
    wave = (2000 * np.sin(np.arange(n) * 2e-4)).astype(np.int16)
    return wave + rng.integers(-40, 40, n, dtype=np.int16)


class Format:
    name = ""

    def write(self, data: np.ndarray) -> None: ...
    def open(self): ...
    def objects(self) -> int: ...


class Labledger(Format):
    name = "zarr v3 sharded, labledger"

    def __init__(self, root: str, options: dict):
        self.store = open_store(root, options)

    def write(self, data: np.ndarray) -> None:
        with ArrayWriter(self.store, "a", (), data.dtype) as w:
            for i in range(0, len(data), SHARD):
                w.write(data[i : i + SHARD])

    def open(self):
        return open_array(self.store, "a")

    def objects(self) -> int:
        return len(self.store.list("a"))


class ZarrPython(Format):
    def __init__(self, root: str, options: dict, shards: bool):
        self.name = "zarr v3 sharded, zarr-python" if shards else "zarr v3 unsharded, zarr-python"
        self.store = open_store(root, options)
        self.shards = shards

    def write(self, data: np.ndarray) -> None:
        array = zarr.create_array(
            self.store.zarr_store(),
            name="a",
            shape=data.shape,
            dtype=data.dtype,
            chunks=(CHUNK,),
            shards=(SHARD,) if self.shards else None,
            compressors=BloscCodec(**LZ4),
        )
        for i in range(0, len(data), SHARD):
            array[i : i + SHARD] = data[i : i + SHARD]

    def open(self):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return zarr.open_array(self.store.zarr_store(), path="a", mode="r")

    def objects(self) -> int:
        return len(self.store.list("a"))


class Hdf5(Format):
    def __init__(self, root: str, options: dict, compression: str):
        self.name = f"hdf5 (h5py), {compression}"
        self.store = open_store(root, options)
        self.compression = compression

    def write(self, data: np.ndarray) -> None:
        filters = (
            hdf5plugin.Blosc(cname="lz4", clevel=5, shuffle=hdf5plugin.Blosc.SHUFFLE)
            if self.compression == "blosc-lz4"
            else {"compression": "gzip", "compression_opts": 1, "shuffle": True}
        )
        # HDF5 writes need to seek: on S3 the file is written locally, then uploaded
        in_place = self.store.local_path("a.h5")
        local = str(in_place) if in_place is not None else tempfile.mktemp(".h5")
        Path(local).parent.mkdir(parents=True, exist_ok=True)
        with h5py.File(local, "w") as f:
            ds = f.create_dataset(
                "a", shape=data.shape, dtype=data.dtype, chunks=(CHUNK,), **filters
            )
            for i in range(0, len(data), SHARD):
                ds[i : i + SHARD] = data[i : i + SHARD]
        if in_place is None:
            self.store.put_file(local, "a.h5")
            Path(local).unlink()

    def open(self):
        local = self.store.local_path("a.h5")
        if local is not None:
            return h5py.File(local, "r")["a"]
        return h5py.File(self.store.open_read("a.h5"), "r")["a"]  # through fsspec

    def objects(self) -> int:
        return 1


def run(formats: list[Format], data: np.ndarray, slices: int, repeat: int, where: str) -> None:
    mb = data.nbytes / 1e6
    rng = np.random.default_rng(1)
    starts = rng.integers(0, len(data) - CHUNK, slices)
    results = {}
    for fmt in formats:
        write = median_time(lambda fmt=fmt: fmt.write(data), 1)
        array = fmt.open()
        np.testing.assert_array_equal(array[1000:2000], data[1000:2000])
        results[fmt.name] = {"write": write, "full": [], "slices": [], "objects": fmt.objects()}
    for _ in range(repeat):  # interleaved
        for fmt in formats:
            array = fmt.open()
            results[fmt.name]["full"].append(median_time(lambda a=array: a[:], 1))
            results[fmt.name]["slices"].append(
                median_time(lambda a=array: [a[s : s + CHUNK] for s in starts], 1)
            )
    print(f"\n{where}: {mb:,.0f} MB of int16, 1 MiB chunks, {slices} random 1 MiB slices")
    print(
        f"  {'format':32s} {'objects':>7s} {'write MB/s':>10s} {'read MB/s':>9s} {'ms/slice':>8s}"
    )
    for name, r in results.items():
        full, sl = statistics.median(r["full"]), statistics.median(r["slices"])
        print(
            f"  {name:32s} {r['objects']:7d} {mb / r['write']:10.0f} {mb / full:9.0f} "
            f"{sl / slices * 1e3:8.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=512)
    parser.add_argument("--slices", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--s3", action="store_true", help="also on moto's S3 server")
    args = parser.parse_args()
    data = signal(args.mb)
    work = Path(tempfile.mkdtemp(prefix="labledger-bench-"))
    try:

        def formats(root: Callable[[str], str], options: dict) -> list[Format]:
            return [
                Labledger(root("labledger"), options),
                ZarrPython(root("zarr-sharded"), options, shards=True),
                ZarrPython(root("zarr-plain"), options, shards=False),
                Hdf5(root("h5-blosc"), options, "blosc-lz4"),
                Hdf5(root("h5-gzip"), options, "gzip-1"),
            ]

        run(formats(lambda n: str(work / n), {}), data, args.slices, args.repeat, "local disk")
        if args.s3:
            with loopback_s3() as endpoint:
                bucket = create_bucket(endpoint, "bench")
                s3 = formats(lambda n: f"{bucket}/{n}", {"endpoint_url": endpoint})
                small = data[: len(data) // 4]
                run(s3, small, args.slices // 5, args.repeat, "S3 (moto on loopback)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
