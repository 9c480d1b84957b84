"""Analysis steps for the simulated testbed: what the demo computes, and examples of steps.

>>> from labledger.sim.analysis import density, windows, bright_windows
>>> p = la.compute(density, la.runs.search(gas="Ar"))
>>> l2 = la.compute(windows, la.runs.search(gas="Ar"))
>>> l4 = la.compute(bright_windows, inputs=l2)
>>> len(p), la.events(level=2).count(), la.events(level=4).with_parent(level=2).count()
(4, 240, 120)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from labledger.events import Events
from labledger.lineage import step

if TYPE_CHECKING:
    import pint

    from labledger.archive import Archive
    from labledger.lineage import Product
    from labledger.quality import Flag, GoodRunList


# version 2: the density is a pint quantity in m^-3 (version 1 kept a bare float)
@step(version="2")
def density(run: Any, *, window: tuple[float, float] = (-60.0, 20.0)) -> pint.Quantity:
    """The electron density (a quantity in m^-3) from the Langmuir probe's sweep, fitted over
    ``window`` (V of bias)."""
    return run.machine.langmuir_probe.density(window=window).to("m^-3")


@step(version="1")
def windows(run: Any, *, width: float = 0.01) -> Any:
    """Level-2 events: the discharge cut into windows of ``width`` s, one event each, with the
    mean probe current and light in it."""
    current = run.signal("Langmuir_I")
    light = run.signal("Plasma_light")
    t = current["time"].values
    on = t >= 0
    index = np.floor(t[on] / width).astype(np.int64)
    counts = np.bincount(index)
    keep = counts > 0
    mean_i = np.bincount(index, current.values[on])[keep] / counts[keep]
    mean_light = np.bincount(index, np.interp(t[on], light["time"].values, light.values))
    return Events(
        {
            "event": np.flatnonzero(keep),
            "start": np.flatnonzero(keep) * width,
            "current": mean_i,
            "light": mean_light[keep] / counts[keep],
        },
        level=2,
        stream="window",
    )


@step(version="1")
def bright_windows(level2: Any, *, quantile: float = 0.5) -> Any:
    """Level-4 events: the level-2 windows brighter than the ``quantile`` of their run, each
    naming the window it came from."""
    table = level2.to_pandas()
    bright = table[table["light"] > table["light"].quantile(quantile)]
    return Events(
        {
            "event": np.arange(len(bright)),
            "light": bright["light"].to_numpy(),
            "parent_event": bright["event"].to_numpy(),
            "parent_stream": bright["stream"].to_numpy(),
        },
        level=4,
        parent_level=2,
        stream="bright",
    )


@dataclass
class Analysis:
    """What :func:`analyse` made: products, flags and a good-run list."""

    density: Product
    windows: Product
    bright: Product
    flags: list[Flag]
    good_runs: GoodRunList
    density_good: Product


def analyse(la: Archive, numbers: Sequence[int]) -> Analysis:
    """The campaign's analysis as a lab would do it: the density of every shot, level-2
    windows and level-4 bright windows; then the shift log's flags (an RF trip, a probe arc),
    which make some of those products stale; a good-run list, and the density over it.

    >>> a = analyse(la, [1234, 1235, 1245, 1255])
    >>> a.flags
    [<Flag 3: power bad on run 1245 (RF generator tripped), active>,
     <Flag 4: probe bad on run 1255 from 0.3 to 0.35 s (arc on the probe tip), active>]
    >>> a.good_runs, len(la.stale())
    (<GoodRunList standard@2: 2 runs, livetime 1.35 s>, 8)
    """
    first, last = numbers[0], numbers[-1]
    runs = la.runs[first : last + 1]
    made_density = la.compute(density, runs)
    made_windows = la.compute(windows, runs)
    made_bright = la.compute(bright_windows, inputs=made_windows)
    flags = []
    tripped = [n for n in numbers if n in TRIPPED]
    if tripped:
        flags.append(
            la.flag(runs=tripped, subsystem="power", severity="bad", reason="RF generator tripped")
        )
    if ARCED in numbers:
        flags.append(
            la.flag(
                run=ARCED,
                start=0.30,
                stop=0.35,
                subsystem="probe",
                severity="bad",
                reason="arc on the probe tip",
            )
        )
    good = la.good_runs(
        "standard", require=["power", "probe"], reason="shots with power and the probe good"
    )
    return Analysis(made_density, made_windows, made_bright, flags, good, la.compute(density, good))


TRIPPED = (1244, 1245)  # the shift log's RF trips
ARCED = 1255  # and a probe arc
