"""A 2,000-point preview of a long signal, from its min/max pyramid against today's read of the
whole signal; and what writing the pyramids costs an ingest.

Target (issue 16): ``run.signal(name, points=2000)`` under 20 ms median whatever the signal's
length (10 M and 100 M samples). Each length is a TDMS file of one int16 DAQmx channel (RF_Pfwd's
port, 50 kHz), ingested into two archives: one as ingest writes it now (with pyramids), one
with the pyramids left out (as a run ingested before them). Both previews are read, alternated,
in the same run; then the ingest of the same file, with and without pyramids, alternated.

    python bench/signal_preview.py [--samples 10000000 100000000] [--repeat 15]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from nptdms import ChannelObject, GroupObject, RootObject, TdmsWriter

sys.path.insert(0, str(Path(__file__).parent))
import labledger as ll
import labledger.ingest.ingest as ingest_module
from labledger.sim import build
from labledger.sim.testbed import VOLTS_PER_COUNT

SIGNAL = "RF_Pfwd"
DAQMX = {
    "NI_Number_Of_Scales": 1,
    "NI_Scale[0]_Scale_Type": "Linear",
    "NI_Scale[0]_Linear_Slope": VOLTS_PER_COUNT,
    "NI_Scale[0]_Linear_Y_Intercept": 0.0,
    "unit_string": "V",
    "wf_increment": 2e-5,
    "wf_start_offset": 0.0,
}


def write_shot(path: Path, samples: int) -> None:
    """ai0 of the ISHTAR card: a slow wave with noise, in segments of 4 M samples."""
    rng = np.random.default_rng(0)
    segment = 1 << 22
    with TdmsWriter(path) as writer:
        for start in range(0, samples, segment):
            n = min(segment, samples - start)
            wave = 2000 * np.sin((start + np.arange(n)) / 1e6) + rng.normal(0, 300, n)
            counts = wave.astype(np.int16)
            channel = ChannelObject("PXI M6251", "ai0", counts, DAQMX)
            head = [RootObject({"gas": "Ar"}), GroupObject("PXI M6251")] if start == 0 else []
            writer.write_segment([*head, channel])


def without_pyramids(fn: Callable[[], object]) -> object:
    """``fn`` run with ingest writing no pyramid (as before them)."""
    real = ingest_module.summarised
    ingest_module.summarised = lambda dtype, row_shape: False
    try:
        return fn()
    finally:
        ingest_module.summarised = real


def archive(folder: Path, daq: Path) -> ll.Archive:
    shutil.rmtree(folder, ignore_errors=True)
    la = ll.init(folder)
    build(la, daq / "campaign", [1233])  # the testbed description, calibrations and wiring
    return la


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, nargs="+", default=[10_000_000, 100_000_000])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--ingests", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ll-bench-preview-"))
    try:
        print(f"{'samples':>12}{'pyramid':>11}{'whole read':>13}{'speed-up':>10}{'KB read':>9}")
        ingest_rows = []
        for samples in args.samples:
            daq = work / f"daq{samples}"
            daq.mkdir()
            shot = daq / "01300_Long.tdms"
            write_shot(shot, samples)
            fast, slow, read = previews(work, daq, shot, samples, args.repeat)
            print(
                f"{samples:>12,}{fast * 1e3:>9.2f}ms{slow * 1e3:>11.1f}ms{slow / fast:>9.0f}x"
                f"{read / 1e3:>9.1f}"
            )
            ingest_rows.append((samples, ingest_times(work, daq, shot, args.ingests)))
            shutil.rmtree(daq)
        print("target: pyramid under 20 ms median, whatever the length\n")
        print(f"{'samples':>12}{'ingest with':>14}{'without':>10}{'ratio':>8}")
        for samples, (w, wo) in ingest_rows:
            print(f"{samples:>12,}{w:>13.2f}s{wo:>9.2f}s{w / wo:>8.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def previews(
    work: Path, daq: Path, shot: Path, samples: int, repeat: int
) -> tuple[float, float, int]:
    """The median preview time with pyramids and without (alternated), and the bytes a preview
    from the pyramid reads."""
    with_p = archive(work / "with", daq)
    without = archive(work / "without", daq)
    with_p.ingest([shot])
    without_pyramids(lambda: without.ingest([shot]))
    fast_run, slow_run = with_p.runs[1300], without.runs[1300]
    a, b = (r.signal(SIGNAL, points=2000) for r in (fast_run, slow_run))
    assert a.attrs["decimated_from"] == b.attrs["decimated_from"] == samples
    fast, slow = [], []
    for i in range(repeat):  # alternated: the machine's noise falls on both
        fast.append(timed(lambda: fast_run.signal(SIGNAL, points=2000)))
        if i < max(3, repeat // 3):  # the whole read is slow: fewer of them
            slow.append(timed(lambda: slow_run.signal(SIGNAL, points=2000)))
    read = pyramid_bytes(with_p)
    with_p.close()
    without.close()
    return statistics.median(fast), statistics.median(slow), read


def pyramid_bytes(la: ll.Archive) -> int:
    """The bytes a fresh preview reads from the store (metadata included)."""
    from labledger.store import arrays

    arrays._METADATA.clear()
    store, counted = la.store, [0]
    real = store.read_ranges, store.read_range, store.read

    def ranges(r: object) -> object:
        got = real[0](r)  # type: ignore[arg-type]
        counted[0] += sum(len(b) for b in got)
        return got

    def one(*a: object) -> object:
        got = real[1](*a)  # type: ignore[arg-type]
        counted[0] += len(got)
        return got

    def whole(k: str) -> bytes:
        got = real[2](k)
        counted[0] += len(got)
        return got

    store.read_ranges, store.read_range, store.read = ranges, one, whole  # type: ignore[method-assign]
    try:
        la.runs[1300].signal(SIGNAL, points=2000)
    finally:
        store.read_ranges, store.read_range, store.read = real  # type: ignore[method-assign]
    return counted[0]


def ingest_times(work: Path, daq: Path, shot: Path, repeat: int) -> tuple[float, float]:
    """The median time of ingesting ``shot`` into a fresh archive, with and without pyramids,
    alternated."""
    with_p, without = [], []
    for _ in range(repeat):
        for kept, times in ((True, with_p), (False, without)):
            la = archive(work / "ingest", daq)
            start = time.perf_counter()
            if kept:
                la.ingest([shot])
            else:
                without_pyramids(lambda la=la: la.ingest([shot]))
            times.append(time.perf_counter() - start)
            la.close()
    return statistics.median(with_p), statistics.median(without)


if __name__ == "__main__":
    main()
