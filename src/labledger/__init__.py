"""labledger: a data platform for experiments.

Raw acquisitions in (LabVIEW TDMS, HDF5/NeXus, CSV); catalogued, checksummed, sliceable data
out.

>>> import labledger as ll
>>> la = ll.open("ishtar")                               # doctest: +SKIP
>>> run = la.runs[1234]
>>> run.channels["PXI M6251/ai3"][10_000:10_005]
array([-4047, -4047, -4045, -4049, -4052], dtype=int16)
>>> run.signal("Langmuir_I")[10_000:10_003].values              # calibrated, in A
array([0.02470093, 0.02470093, 0.02468872])

The names below are loaded when first used: ``import labledger`` loads neither the catalog's
database layer nor numpy, pint or Arrow until they are needed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from labledger.errors import LabledgerError
from labledger.version import __version__

if TYPE_CHECKING:
    from labledger.archive import Archive, init, open
    from labledger.events import Events
    from labledger.lineage import Step, step
    from labledger.runs import Channel, Run, Runs, Tree

# name -> the module that holds it
_LAZY = {
    "Archive": "labledger.archive",
    "init": "labledger.archive",
    "open": "labledger.archive",
    "Events": "labledger.events",
    "Step": "labledger.lineage",
    "step": "labledger.lineage",
    "Channel": "labledger.runs",
    "Run": "labledger.runs",
    "Runs": "labledger.runs",
    "Tree": "labledger.runs",
}


def connect(url: str, api_key: str | None = None, **kwargs: Any) -> Any:
    """The archive a labledger server serves at ``url``, with the interface of a local one
    (see :func:`labledger.client.connect`).

    >>> la = ll.connect("http://127.0.0.1:8000", api_key="ll_...")  # doctest: +SKIP
    """
    from labledger.client import connect

    return connect(url, api_key, **kwargs)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        found = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = found  # asked once
        return found
    raise AttributeError(f"module 'labledger' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [
    "Archive",
    "Channel",
    "Events",
    "LabledgerError",
    "Run",
    "Runs",
    "Step",
    "Tree",
    "__version__",
    "connect",
    "init",
    "open",
    "step",
]
