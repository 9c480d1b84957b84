"""Many signals of many runs: ``la.signals`` against the obvious loop over runs.

Target (issue 3): 20 signals over 100 runs at least 2x faster than

    for run in runs:
        for name in names:
            run.signal(name)

on this 2-core machine. Both get fresh Run objects (nothing cached from an earlier read) and
return the same values (checked).

    python bench/signals_many.py [--runs 100] [--repeat 5] [--store s3]

``--store s3`` keeps the archive's arrays on moto's S3 server on loopback, where reads wait on
the network and ``la.signals`` overlaps them with threads.
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

sys.path.insert(0, str(Path(__file__).parent))
import labledger as ll
from labledger.sim import build
from labledger.sim.objectstore import create_bucket, loopback_s3
from timing import median_time

NAMES = [
    "RF_Pfwd", "RF_Pref", "P_inj", "Coil_I", "Coil_V", "Coil_B", "Langmuir_I", "Langmuir_V",
    "Probe_P", "Interferometer_phase", "Pressure", "Trigger", "Photodiode_1", "Photodiode_2",
    "Photodiode_3", "Photodiode_4", "Plasma_light", "Wall_T1", "Wall_T2", "Gas_flow",
]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--store", choices=["local", "s3"], default="local")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ll-bench-signals-"))
    with ExitStack() as cleanup:
        cleanup.callback(shutil.rmtree, work, ignore_errors=True)
        store, options = None, {}
        if args.store == "s3":
            endpoint = cleanup.enter_context(loopback_s3())
            store, options = (
                create_bucket(endpoint, "bench") + "/archive",
                {"endpoint_url": endpoint},
            )
        la = ll.init(work / "archive", store=store, storage_options=options)
        start = time.perf_counter()
        build(la, work / "daq", range(1221, 1221 + args.runs))
        print(f"campaign of {args.runs} shots built in {time.perf_counter() - start:.1f} s")
        numbers = [r.number for r in la.runs]

        def loop() -> dict[tuple[int, str], np.ndarray]:
            return {
                (run.number, name): run.signal(name).values
                for run in la.runs[numbers[0] : numbers[-1] + 1]
                for name in NAMES
            }

        def together() -> object:
            return la.signals(NAMES, runs=la.runs[numbers[0] : numbers[-1] + 1])

        one_by_one, data = loop(), together()
        for (number, name), values in one_by_one.items():
            np.testing.assert_array_equal(data[name].sel(run=number).values, values)
        samples = sum(v.size for v in one_by_one.values())
        t_loop = median_time(loop, args.repeat)
        t_together = median_time(together, args.repeat)
        print(f"{len(NAMES)} signals x {len(numbers)} runs = {samples / 1e6:.0f} M samples")
        print(f"{'loop over runs':<24}{t_loop:>8.2f} s")
        print(f"{'la.signals':<24}{t_together:>8.2f} s")
        print(f"speed-up {t_loop / t_together:.2f}x (target >= 2x), store {args.store}")
        la.close()


if __name__ == "__main__":
    main()
