"""`labledger check` on a 400 MB ingest, and what `--repair` reclaims after killed ingests.

Issue 11 (item 8): 25 kills of a 400 MB ingest left 4.1 GB of folders no run names. This writes
a 400 MB HDF5 file (200 MB of random float64, 200 MB of int16), ingests it, times `labledger
check` (every raw byte hashed, every array decoded) with its peak memory, then starts ingests
of altered copies and kills them (SIGKILL) once they have written part of their folder, and
times `labledger check --repair --older-than 0`, which removes what they left.

    python bench/check.py [--kills 5] [--dir /tmp]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np


def cli(*args: str) -> tuple[float, float, str]:
    """Run a command; its wall time, peak RSS (MB, from the kernel's rusage of the child) and
    last line of output."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "labledger.cli", *args],
                            stdout=subprocess.PIPE, text=True)  # fmt: skip
    _, _, usage = os.wait4(proc.pid, 0)
    took = time.perf_counter() - start
    assert proc.stdout is not None
    return took, usage.ru_maxrss / 1024, proc.stdout.read().strip().splitlines()[-1]


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--dir", default=tempfile.gettempdir())
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(dir=args.dir, prefix="ll-check-"))
    try:
        raw = work / "scan.h5"
        rng, step = np.random.default_rng(0), 5_000_000
        with h5py.File(raw, "w") as f:  # in slices: a child's peak RSS starts from ours
            noise = f.create_dataset("noise", (25_000_000,), "f8")
            ramp = f.create_dataset("ramp", (100_000_000,), "i2")
            for i in range(0, 25_000_000, step):
                noise[i : i + step] = rng.standard_normal(step)
            for i in range(0, 100_000_000, step):
                ramp[i : i + step] = (np.arange(i, i + step) % 1000).astype(np.int16)
        archive = str(work / "archive")
        cli("init", archive)
        took, peak, said = cli("ingest", "-a", archive, str(raw))
        print(f"ingest of {raw.stat().st_size / 1e6:.0f} MB: {took:.1f} s, {peak:.0f} MB ({said})")
        for cache in ("warm", "warm again"):
            took, peak, said = cli("check", "-a", archive)
            print(f"check ({cache} page cache): {took:.1f} s, peak RSS {peak:.0f} MB ({said})")
        runs = work / "archive" / "store" / "runs"
        kept, killed = folder_bytes(runs), 0
        for i in range(args.kills):
            copy = work / f"scan-{i}.h5"
            shutil.copyfile(raw, copy)
            with h5py.File(copy, "r+") as f:
                f["noise"][0] = i  # other bytes, so that it is not "already ingested"
            before = {p.name for p in runs.iterdir()}
            proc = subprocess.Popen([sys.executable, "-m", "labledger.cli", "ingest", "-a",
                                     archive, str(copy)], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)  # fmt: skip
            while proc.poll() is None:  # a bench, not a test: poll until it has written 50 MB
                new = [p for p in runs.iterdir() if p.name not in before]
                if new and folder_bytes(new[0]) > 50e6:
                    proc.kill()
                    break
                time.sleep(0.02)
            proc.wait()
            killed += proc.returncode == -signal.SIGKILL
            copy.unlink()
        left = folder_bytes(runs) - kept
        print(f"{killed} killed ingests left about {left / 1e6:.0f} MB in orphan folders")
        took, peak, said = cli("check", "-a", archive, "--repair", "--older-than", "0")
        print(f"check --repair: {took:.1f} s, peak RSS {peak:.0f} MB ({said})")
        print(f"runs/ now holds {len(list(runs.iterdir()))} folder(s)")
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
