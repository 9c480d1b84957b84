"""What a user who only reads a server pays to start: ``import labledger.client``, beside
``import labledger.archive`` (the local archive, with the catalog's SQLAlchemy and Alembic)
measured in the same run, each in a fresh interpreter, alternating.

Target (issue 14): the client loads neither SQLAlchemy nor Alembic, nor pint nor matplotlib.

    python bench/client_import.py [--repeat 15]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

HEAVY = ["sqlalchemy", "alembic", "pint", "matplotlib", "pydantic", "fastapi"]
PROBE = """
import sys, time
t = time.perf_counter()
import {module}
took = time.perf_counter() - t
print(__import__("json").dumps({{"s": took, "modules": len(sys.modules),
      "heavy": [m for m in {heavy!r} if m in sys.modules]}}))
"""


def once(module: str) -> dict[str, object]:
    code = PROBE.format(module=module, heavy=HEAVY)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    modules = ("labledger.client", "labledger.archive")
    found: dict[str, list[dict[str, object]]] = {m: [] for m in modules}
    for _ in range(args.repeat):  # alternating: a busy moment costs both alike
        for module in modules:
            found[module].append(once(module))
    times = {m: statistics.median(float(r["s"]) for r in found[m]) for m in modules}  # type: ignore[arg-type]
    for module in modules:
        last = found[module][-1]
        print(f"import {module:<18} {times[module] * 1000:7.0f} ms median of {args.repeat}, "
              f"{last['modules']} modules, heavy: {last['heavy'] or 'none'}")  # fmt: skip
    client, local = times["labledger.client"], times["labledger.archive"]
    print(f"client / local archive: {client / local:.2f} of the time")
    light = not found["labledger.client"][-1]["heavy"]
    print(f"target (no SQLAlchemy, Alembic, pint, matplotlib in the client): "
          f"{'met' if light else 'NOT met'}")  # fmt: skip


if __name__ == "__main__":
    main()
