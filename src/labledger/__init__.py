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
"""

from typing import Any

from labledger.archive import Archive, init, open
from labledger.errors import LabledgerError
from labledger.lineage import Step, step
from labledger.runs import Channel, Run, Runs, Tree
from labledger.version import __version__


def connect(url: str, api_key: str | None = None, **kwargs: Any) -> Any:
    """The archive a labledger server serves at ``url``, with the interface of a local one
    (see :func:`labledger.client.connect`).

    >>> la = ll.connect("http://127.0.0.1:8000", api_key="ll_...")  # doctest: +SKIP
    """
    from labledger.client import connect

    return connect(url, api_key, **kwargs)


def __getattr__(name: str) -> Any:
    if name == "Events":  # loaded on first use: it brings pyarrow
        from labledger.events import Events

        return Events
    raise AttributeError(f"module 'labledger' has no attribute {name!r}")


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
