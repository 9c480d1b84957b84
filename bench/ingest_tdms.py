"""Ingest of a 2 GB LabVIEW TDMS file against `cp` of the same file, and ingest's peak memory.

Targets (issue 2): throughput at least 50% of `cp`'s; peak memory under 500 MB (the file is
streamed, never held whole). Ingest also hashes every byte and makes everything durable
(fsync) before the catalog commit, which `cp` does not, so `cp && sync` is printed as well.

    python bench/ingest_tdms.py [--gb 2] [--repeat 3] [--dir /tmp]

The runs are interleaved (cp, ingest, cp, ingest, ...), each after an untimed sync, and the
medians compared, because this machine's disk and page cache are noisy.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from nptdms import ChannelObject, GroupObject, RootObject, TdmsWriter

CHANNELS = 8
SEGMENT_SAMPLES = 1 << 20  # per channel: 2 MiB of int16 per channel per segment, as a DAQ writes


def write_tdms(path: Path, gigabytes: float) -> None:
    """A DAQ-like file: int16 ADC counts (a slow wave plus noise), many segments, with scaling."""
    rng = np.random.default_rng(0)
    total = int(gigabytes * 1e9) // (2 * CHANNELS)
    base = (2000 * np.sin(np.arange(SEGMENT_SAMPLES) * 2e-4)).astype(np.int16)
    props = {"NI_Scale[0]_Linear_Slope": 20 / 65536, "wf_increment": 1e-6, "wf_start_offset": 0.0}
    with TdmsWriter(path) as writer:
        done = 0
        while done < total:
            n = min(SEGMENT_SAMPLES, total - done)
            channels = [
                ChannelObject(
                    "PXI M6251",
                    f"ai{c}",
                    base[:n] + rng.integers(-40, 40, n, dtype=np.int16),
                    props if done == 0 else None,
                )
                for c in range(CHANNELS)
            ]
            head = [RootObject({"gas": "Ar"}), GroupObject("PXI M6251")] if done == 0 else []
            writer.write_segment(head + channels)
            done += n


def timed(command: list[str]) -> tuple[float, int]:
    """Wall time of a command, and its peak resident memory in bytes. Each starts with no dirty
    pages left by the one before (an untimed sync), or it would pay for their writeback."""
    subprocess.run(["sync"], check=True)
    start = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    _, status, usage = _wait4(proc)
    elapsed = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"{' '.join(command)} failed ({status})")
    return elapsed, usage.ru_maxrss * 1024


def _wait4(proc: subprocess.Popen) -> tuple[int, int, resource.struct_rusage]:
    import os

    pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return pid, proc.returncode, usage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gb", type=float, default=2.0)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--dir", default=tempfile.gettempdir())
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="labledger-bench-", dir=args.dir))
    labledger = str(Path(sys.executable).with_name("labledger"))
    try:
        source = work / "02001_Data.tdms"
        print(f"writing a {args.gb:g} GB TDMS file ...", flush=True)
        write_tdms(source, args.gb)
        size = source.stat().st_size
        cp, cp_sync, keep, ingest, memory = [], [], [], [], []
        for i in range(args.repeat):
            target = work / "copy.tdms"
            t, _ = timed(["cp", str(source), str(target)])
            cp.append(t)
            target.unlink()
            t, _ = timed(["sh", "-c", f"cp '{source}' '{target}' && sync"])
            cp_sync.append(t)
            target.unlink()
            # the least that keeps a raw file safely: copy, checksum, make durable
            keep_cmd = f"cp '{source}' '{target}' && openssl dgst -sha256 '{source}'"
            t, _ = timed(["sh", "-c", f"{keep_cmd} > /dev/null && sync"])
            keep.append(t)
            target.unlink()
            archive = work / f"archive{i}"
            subprocess.run([labledger, "init", str(archive)], check=True, stdout=subprocess.DEVNULL)
            t, peak = timed([labledger, "ingest", "--archive", str(archive), str(source)])
            ingest.append(t)
            memory.append(peak)
            shutil.rmtree(archive)
        mb = size / 1e6
        c, cs, g = statistics.median(cp), statistics.median(cp_sync), statistics.median(ingest)
        k = statistics.median(keep)
        print(f"file: {mb:,.0f} MB, {CHANNELS} int16 channels; medians of {args.repeat} runs")
        print(f"cp:               {c:6.2f} s  {mb / c:7.0f} MB/s")
        print(f"cp && sync:       {cs:6.2f} s  {mb / cs:7.0f} MB/s")
        print(f"cp, sha256, sync: {k:6.2f} s  {mb / k:7.0f} MB/s  (keeping the raw file alone)")
        print(f"labledger ingest: {g:6.2f} s  {mb / g:7.0f} MB/s  (copy + sha256 + arrays + fsync)")
        print(f"ingest throughput / cp:         {c / g:5.2f}  (target >= 0.50)")
        print(f"ingest throughput / cp && sync: {cs / g:5.2f}")
        print(f"ingest throughput / cp, sha256, sync: {k / g:5.2f}")
        print(f"ingest peak memory: {max(memory) / 1e6:,.0f} MB  (target < 500 MB)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
