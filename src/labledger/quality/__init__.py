"""Data quality: flags on runs and intervals of runs, and good-run lists made from them.

>>> la.flag(runs=[1245], subsystem="power", severity="bad", reason="outage")
<Flag 3: power bad on run 1245 (outage), active>
>>> [r.number for r in la.runs.search(gas="Ar", quality="good")]
[1255]
>>> la.good_runs("standard", query={"gas": "Ar"}, require=["power", "probe"])
<GoodRunList standard@2: 1 runs, livetime 0.7 s>
"""

from labledger.quality.flags import SEVERITIES, Flag, Period
from labledger.quality.goodruns import GoodRunList

__all__ = ["SEVERITIES", "Flag", "GoodRunList", "Period"]
