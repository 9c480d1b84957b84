"""Lineage: steps, the products they make with their provenance, staleness, processing levels.

>>> import labledger as ll                                          # doctest: +SKIP
>>> @ll.step(version="2")                                           # doctest: +SKIP
... def density_profile(run, *, window=(-60, 20)):
...     return run.machine.langmuir_probe.density(window=window)
>>> p = la.compute(density_profile, runs=la.runs.search(gas="Ar"))  # doctest: +SKIP
"""

from typing import Any

from labledger.lineage.step import Step, step

__all__ = ["Events", "Step", "step"]


def __getattr__(name: str) -> Any:
    # Events brings pyarrow: loaded when a step first emits events, not by `import labledger`
    if name == "Events":
        from labledger.events import Events

        return Events
    raise AttributeError(f"module 'labledger.lineage' has no attribute {name!r}")
