"""Data quality: flags on runs and intervals of runs, and good-run lists made from them.

>>> la.flag(runs=range(1200, 1210), subsystem="power", severity="bad", reason="outage")
...                                                                     # doctest: +SKIP
>>> la.runs.search(gas="Ar", quality="good")                          # doctest: +SKIP
>>> la.good_runs("standard", query={"gas": "Ar"}, require=["power", "probe"])  # doctest: +SKIP
"""

from labledger.quality.flags import SEVERITIES, Flag, Flags, Period
from labledger.quality.goodruns import GoodRunList, GoodRunLists

__all__ = ["SEVERITIES", "Flag", "Flags", "GoodRunList", "GoodRunLists", "Period"]
