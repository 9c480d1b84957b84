"""Ingest of hostile files beside normal files of about the same size on disk: wall time and
peak memory of each ingest, run as its own process (`labledger ingest`), and their ratios.

Targets (issue 11, item 4): what a file declares does not decide the cost. Fill-only data
cost nothing; shapes over the limits are refused before any work; those just under the limits
stay within the 500 MB ingest memory target.

    python bench/hostile_ingest.py [--dir /tmp] [--tiny 30000]

Each line: the shape, what ingest did (ingested or refused), time and peak RSS of the ingest
process, then the same for a normal file of similar on-disk size and the ratios.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np

Maker = Callable[[Path], Path]


def fill_only(folder: Path) -> Path:
    """10^12 doubles declared, none written (8 TB of NaN fill in a file of a few KB)."""
    path = folder / "fill_1.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("huge", shape=(10**12,), dtype="f8", chunks=(1 << 16,), fillvalue=np.nan)
    return path


def wide_csv(folder: Path, columns: int = 10**6, rows: int = 1) -> Path:
    path = folder / f"wide{columns}_2.csv"
    with open(path, "w") as f:
        f.write(",".join(f"c{i}" for i in range(columns)) + "\n")
        for r in range(rows):
            f.write(",".join(str(r + i % 7) for i in range(columns)) + "\n")
    return path


def wide_csv_at_limit(folder: Path) -> Path:
    """10,000 columns (the default limit) of 100 rows: accepted, the widest a CSV may be."""
    return wide_csv(folder, 10_000, 100)


def sparse_wide(folder: Path) -> Path:
    """(2000, 250000) doubles in chunks of (1000, 1000), one chunk written: a row of chunks is
    2 GB of fill values, which ingest once read at once."""
    path = folder / "sparse_9.h5"
    with h5py.File(path, "w") as f:
        ds = f.create_dataset("wide", (2000, 250_000), "f8", chunks=(1000, 1000), fillvalue=0)
        ds[1000:2000, 7000:8000] = np.random.default_rng(1).standard_normal((1000, 1000))
    return path


def text_csv(folder: Path, size: int, columns: int = 1000) -> Path:
    """``columns`` text columns of short words, about ``size`` bytes: held whole in memory.
    A first column of numbers makes it a table labledger keeps (docs/formats.md)."""
    path = folder / f"text{size >> 20}M_10.csv"
    header = "t," + ",".join(f"c{i}" for i in range(columns)) + "\n"
    with open(path, "w") as f:
        f.write(header)
        for r in range(max(1, size // (8 * columns))):
            words = ",".join(f"w{(r * 7 + i) % 99999:05d}x" for i in range(columns))
            f.write(f"{r},{words}\n")
    return path


def huge_compound(folder: Path) -> Path:
    """10^10 compound records declared (160 GB, chunked, none written): held whole, refused."""
    path = folder / "compound_3.h5"
    kind = np.dtype([("t", "<f8"), ("v", "<f8")])
    with h5py.File(path, "w") as f:
        f.create_dataset("events", shape=(10**10,), dtype=kind, chunks=(4096,))
    return path


def written_compound(folder: Path) -> Path:
    """200 MB of compound records actually written: over whole_bytes (128 MiB), refused."""
    path = folder / "compound_4.h5"
    kind = np.dtype([("t", "<f8"), ("v", "<f8")])
    with h5py.File(path, "w") as f:
        ds = f.create_dataset("events", shape=(12_500_000,), dtype=kind, chunks=(1 << 16,))
        block = np.zeros(1 << 20, kind)
        for i in range(0, ds.shape[0], len(block)):
            n = min(len(block), ds.shape[0] - i)
            block["t"][:n] = np.arange(i, i + n)
            ds[i : i + n] = block[:n]
    return path


def many_tiny(folder: Path, count: int) -> Path:
    path = folder / f"tiny{count}_5.h5"
    with h5py.File(path, "w") as f:
        for i in range(count):
            f[f"g{i // 1000}/d{i}"] = np.arange(4, dtype="i2")
    return path


def long_names(folder: Path) -> Path:
    """1000 datasets each named with 4000 bytes (the limit is 4096), in a group named so too."""
    path = folder / "names_6.h5"
    with h5py.File(path, "w") as f:
        group = f.create_group("G" * 4000)
        for i in range(1000):
            group[f"{i:04d}" + "n" * 3996] = np.arange(4.0)
    return path


def normal(folder: Path, size: int, name: str) -> Path:
    """A plain HDF5 file of one float64 dataset, about ``size`` bytes on disk."""
    path = folder / f"normal_{name}_7.h5"
    values = np.sin(np.arange(max(1, size // 8)) * 1e-3)
    with h5py.File(path, "w") as f:
        f["signal"] = values
    return path


def normal_csv(folder: Path, size: int) -> Path:
    path = folder / "normal_8.csv"
    line = ",".join(f"{v:.6f}" for v in np.linspace(0, 1, 10)) + "\n"
    with open(path, "w") as f:
        f.write(",".join(f"c{i}" for i in range(10)) + "\n")
        f.write(line * max(1, size // len(line)))
    return path


# The ingest's own peak: VmHWM of its process, read as it exits. (ru_maxrss of a child would
# also count the RSS this process had when it forked it.)
_MEASURED = """
import atexit, sys
def peak():
    status = open("/proc/self/status").read().split("VmHWM:")[1]
    sys.stderr.write(f"\\npeak {int(status.split()[0]) * 1024}\\n")
atexit.register(peak)
from labledger.cli import main
sys.argv[0] = "labledger"
main()
"""


def ingest(archive: Path, path: Path) -> tuple[str, float, int]:
    """Outcome, wall time and peak RSS (bytes) of one `labledger ingest` process."""
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", _MEASURED, "ingest", "--archive", str(archive), str(path)],
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - start
    err, _, peak = proc.stderr.rpartition("\npeak ")
    outcome = "ingested" if proc.returncode == 0 else "refused: " + err.strip()[:300]
    return outcome, elapsed, int(peak)


def size(n: float) -> str:
    return next(
        f"{n / s:.1f} {u}"
        for s, u in [(1e9, "GB"), (1e6, "MB"), (1e3, "kB"), (1, "B")]
        if n >= s or s == 1
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", default=None, help="where to write the files and archives")
    parser.add_argument(
        "--tiny", type=int, default=30_000, help="datasets in the many-tiny file (the limit)"
    )
    parser.add_argument("--only", default="", help="run only the shapes whose label has this")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="hostile-", dir=args.dir))
    try:
        shapes: list[tuple[str, Maker, str]] = [
            ("10^12 fill-only doubles", fill_only, "h5"),
            ("10^6-column CSV", wide_csv, "csv"),
            ("10^4-column CSV x 100 rows", wide_csv_at_limit, "csv"),
            ("10^10 compound records declared", huge_compound, "h5"),
            ("200 MB compound written", written_compound, "h5"),
            ("sparse 2-D, 2 GB chunk rows", sparse_wide, "h5"),
            ("1000 text columns, 40 MB CSV", lambda d: text_csv(d, 40 << 20), "csv"),
            ("1000 text columns, 200 MB CSV", lambda d: text_csv(d, 200 << 20), "csv"),
            (f"{args.tiny} tiny datasets", lambda d: many_tiny(d, args.tiny), "h5"),
            ("1000 names of 4000 bytes", long_names, "h5"),
        ]
        print(
            f"{'shape':34} {'on disk':>9} {'time':>7} {'peak':>6} | {'normal':>7} {'peak':>6} "
            f"| {'ratios':>11} | outcome"
        )
        for label, make, kind in shapes:
            if args.only not in label:
                continue
            hostile = make(folder)
            on_disk = hostile.stat().st_size
            plain = normal_csv(folder, on_disk) if kind == "csv" else normal(folder, on_disk, kind)
            results = []
            for path in (hostile, plain):
                archive = folder / f"archive-{path.stem}"
                subprocess.run(
                    [sys.executable, "-m", "labledger.cli", "init", str(archive)],
                    check=True,
                    capture_output=True,
                )
                results.append(ingest(archive, path))
                shutil.rmtree(archive)
            (outcome, t, rss), (_, t0, rss0) = results
            print(
                f"{label:34} {size(on_disk):>9} {t:6.2f}s {rss / 2**20:4.0f}MB | "
                f"{t0:6.2f}s {rss0 / 2**20:4.0f}MB | {t / t0:4.1f}x {rss / rss0:4.1f}x | "
                f"{outcome}"
            )
            hostile.unlink()
            plain.unlink()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
