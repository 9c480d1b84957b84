"""What provenance capture costs: a step that reads 20 signals of each of 100 runs, run plainly
against ``la.compute`` (which notes every read, hashes, stores and records each result).

Target (issue 4): capture adds under 5%. Each compute repeat uses a new step version, so
nothing is reused and everything is recorded again.

    python bench/provenance.py [--runs 100] [--repeat 3]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
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
    parser.add_argument("--repeat", type=int, default=7)
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

        inside: list[float] = []  # time in the step itself, per compute

        def timed(run):  # type: ignore[no-untyped-def]
            start = time.perf_counter()
            try:
                return summary(run)
            finally:
                inside[-1] += time.perf_counter() - start

        def recorded() -> object:
            step = ll.step(timed, version=f"v{next(versions)}", name="bench:summary")
            inside.append(0.0)
            p = la.compute(step, la.runs[numbers[0] : numbers[-1] + 1])
            assert not p.reused
            return p

        expected, product = plain(), recorded()
        assert product.value == expected, "compute must give what the plain loop gives"
        # alternated, so that both see the same drift of this noisy machine
        pairs = [(median_time(plain), median_time(recorded)) for _ in range(args.repeat)]
        t_plain = statistics.median(p for p, _ in pairs)
        t_recorded = statistics.median(r for _, r in pairs)
        ratios = sorted(r / p for p, r in pairs)
        outside = statistics.median(r - i for (_, r), i in zip(pairs, inside[1:], strict=True))
        print(f"plain loop over {args.runs} runs x 20 signals: {t_plain:.3f} s (median)")
        print(f"la.compute (capture, hash, store, record):  {t_recorded:.3f} s (median)")
        low, mid, high = (100 * (r - 1) for r in (ratios[0], statistics.median(ratios), ratios[-1]))
        print(
            f"overhead: {mid:+.1f}% median of {len(pairs)} alternated pairs, from {low:+.1f}% "
            f"to {high:+.1f}% (target under +5%)"
        )
        print(
            f"of which outside the step (keys, hashes, storing, the catalog): {1e3 * outside:.0f} "
            f"ms median, {100 * outside / t_plain:.1f}% of the plain loop"
        )
        la.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
