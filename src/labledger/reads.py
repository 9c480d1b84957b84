"""What a computation read: the log that provenance is made of.

The lineage package opens a :class:`ReadLog` around a step; runs, channels, signals and products
note their reads in it as they happen, so a step's inputs are recorded without the step saying
anything. Outside a step nothing is open and a read costs one context-variable lookup more.

The log also carries what a reproduction must read again exactly: the calibration versions a
recorded computation used, pinned per run.

>>> with recording() as log:
...     pass
>>> log.runs
{}
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

# A labledger.runs.Run; named loosely here, as runs import this module to note their reads.
Run = Any


@dataclass
class RunReads:
    """What was read of one run: signals by name, channels by key, and every calibration
    applied (name -> (version label, whether it was asked for explicitly))."""

    run: Run
    signals: set[str] = field(default_factory=set)
    channels: set[str] = field(default_factory=set)
    calibrations: dict[str, tuple[str, bool]] = field(default_factory=dict)


@dataclass
class ReadLog:
    """The reads of one computation, by run id, and the products it read, by id."""

    runs: dict[str, RunReads] = field(default_factory=dict)
    products: dict[str, Any] = field(default_factory=dict)
    # run id -> calibration name -> the version to read under instead of the one in force
    pinned: dict[str, dict[str, str]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _of(self, run: Run) -> RunReads:
        found = self.runs.get(run.id)
        if found is None:
            found = self.runs[run.id] = RunReads(run)
        return found

    def signals(
        self,
        run: Run,
        names: Iterable[str],
        calibrations: dict[str, tuple[str, bool]],
        channels: Iterable[str] = (),
    ) -> None:
        with self._lock:  # la.signals notes from its worker threads
            reads = self._of(run)
            reads.signals.update(names)
            reads.calibrations.update(calibrations)
            reads.channels.update(channels)

    def channel(self, run: Run, key: str) -> None:
        with self._lock:
            self._of(run).channels.add(key)

    def product(self, product: Any) -> None:
        with self._lock:
            self.products[product.id] = product


_CURRENT: ContextVar[ReadLog | None] = ContextVar("labledger_reads", default=None)


def current() -> ReadLog | None:
    """The log open in this context, if a step is being computed."""
    return _CURRENT.get()


@contextmanager
def recording(log: ReadLog | None = None) -> Iterator[ReadLog]:
    """Note every read made in this context (this thread, this task) into ``log``."""
    log = log if log is not None else ReadLog()
    token = _CURRENT.set(log)
    try:
        yield log
    finally:
        _CURRENT.reset(token)
