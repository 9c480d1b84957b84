"""Lineage of a product with 10,000 ancestors, on SQLite.

A cheap step over 100 runs makes 100 parts; each next layer is computed over the previous
layer's parts; after 99 more layers the last set has 100 x 100 product ancestors, plus the runs
and their raw files. Target (issue 4): ``la.lineage(id)`` under 1 s.

    python bench/lineage_scale.py [--runs 100] [--layers 100]
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
from timing import median_time


@ll.step(version="1", name="bench:first")
def first(run):  # type: ignore[no-untyped-def]
    return run.number


@ll.step(version="1", name="bench:next")
def following(value, *, layer):  # type: ignore[no-untyped-def]
    return value + layer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--layers", type=int, default=100)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ll-bench-lineage-"))
    try:
        la = ll.init(work / "archive")
        build(la, work / "daq", range(1221, 1221 + args.runs))
        start = time.perf_counter()
        product = la.compute(first, list(la.runs))
        for layer in range(1, args.layers):
            product = la.compute(following, inputs=product, layer=layer)
        made = time.perf_counter() - start
        count = args.runs * args.layers
        print(f"{count} products in {args.layers} layers made in {made:.1f} s "
              f"({1e3 * made / count:.2f} ms each)")  # fmt: skip
        graph = la.lineage(product.id)
        products = sum(n.kind == "product" for n in graph.nodes.values()) - 1
        print(f"lineage of the last set: {len(graph.nodes) - 1} ancestors ({products} products)")
        t_up = median_time(lambda: la.lineage(product.id), 3)
        t_text = median_time(lambda: la.lineage(product.id).tree(), 3)
        t_down = median_time(lambda: la.lineage(la.runs[1221].id, direction="down"), 3)
        print(
            f"la.lineage(id) up: {t_up:.3f} s (target under 1 s); "
            f"with the tree as text: {t_text:.3f} s"
        )
        print(f"la.lineage(run) down ({args.layers * 2} products): {t_down:.3f} s")
        la.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
