"""What provenance capture costs: a step that reads 20 signals of each of 100 runs, run plainly
against ``la.compute`` (which notes every read, hashes, stores and records each result).

Target (issue 4): capture adds under 5%. Each compute repeat uses a new step version, so
nothing is reused and everything is recorded again.

    python bench/provenance.py [--runs 100] [--repeat 3]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import labledger as ll
from labledger.sim import build
from signals_many import NAMES
from timing import median_time


def summary(run):  # type: ignore[no-untyped-def]
    """The mean of each of 20 signals over the discharge."""
    return {name: float(run.signal(name, time=(0.0, 0.5)).mean()) for name in NAMES}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ll-bench-provenance-"))
    try:
        la = ll.init(work / "archive")
        start = time.perf_counter()
        build(la, work / "daq", range(1221, 1221 + args.runs))
        print(f"campaign of {args.runs} shots built in {time.perf_counter() - start:.1f} s")
        numbers = [r.number for r in la.runs]
        versions = iter(range(1_000_000))

        def plain() -> object:
            return {r.number: summary(r) for r in la.runs[numbers[0] : numbers[-1] + 1]}

        def recorded() -> object:
            step = ll.step(summary, version=f"v{next(versions)}", name="bench:summary")
            p = la.compute(step, la.runs[numbers[0] : numbers[-1] + 1])
            assert not p.reused
            return p

        expected, product = plain(), recorded()
        assert product.value == expected, "compute must give what the plain loop gives"
        t_plain = median_time(plain, args.repeat)
        t_recorded = median_time(recorded, args.repeat)
        print(f"plain loop over {args.runs} runs x 20 signals: {t_plain:.3f} s")
        print(f"la.compute (capture, hash, store, record):  {t_recorded:.3f} s")
        print(f"overhead: {100 * (t_recorded / t_plain - 1):+.1f}% (target under +5%)")
        la.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
