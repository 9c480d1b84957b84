"""Lineage: steps, the products they make with their provenance, staleness, processing levels.

>>> import labledger as ll
>>> @ll.step(version="2")
... def density_profile(run, *, window=(-60, 20)):
...     return run.machine.langmuir_probe.density(window=window)
>>> p = la.compute(density_profile, runs=la.runs.search(gas="Ar", since="2026-11-07T13:00"))
>>> p.value
{1245: <Quantity(7.36...e+17, '1 / meter ** 3')>, 1255: <Quantity(3.13...e+17, '1 / meter ** 3')>}
>>> la.compute(density_profile, runs=[1245, 1255]).reused
True
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
