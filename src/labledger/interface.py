"""The one interface of an archive, opened here (:class:`labledger.archive.Archive`) or through a
server (:class:`labledger.client.remote.RemoteArchive`).

Neither is built on the other: each module declares its class an ``ArchiveAPI`` for the type
checker, which holds it to every call and signature here (tests/test_interface.py checks the
same when the suite runs). Their runs ask them through the one :class:`ArchiveHome`. What a
server does not offer yet raises :class:`labledger.errors.NotRemote`, which says so.

>>> type(la.runs.home).__name__, la.runs.home.flags(la.runs[1245])
('ArchiveHome', [<Flag 2: probe bad on run 1245 from 0.2 to 0.3 s (arc), active>])
"""

from __future__ import annotations

import builtins
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

from labledger.ids import DEFAULT_PROJECT
from labledger.lineage.product import ProductRecords
from labledger.records import OLDER_THAN_MINUTES
from labledger.runs import Run

if TYPE_CHECKING:
    import numpy as np
    import pandas
    import pyarrow
    import xarray

    from labledger.export import Exported
    from labledger.lineage.compute import Reproduction
    from labledger.lineage.graph import Lineage
    from labledger.lineage.product import Product, Stale
    from labledger.live import Cursor, State
    from labledger.machine import Machine
    from labledger.machine.calibration import Calibrations
    from labledger.machine.configuration import ConfigHistory
    from labledger.machine.logs import Logs
    from labledger.quality import Flag, GoodRunList
    from labledger.records import RunCatalog
    from labledger.reports import CheckReport, IngestResult
    from labledger.runs import Piece, Runs, TimeWindow
    from labledger.store import Store
    from labledger.summary import Summary
    from labledger.withdrawals import Withdrawal, Withdrawals


class FlagsAPI(Protocol):
    """``la.flags``: the data-quality flags (:class:`labledger.quality.recorded.Flags`)."""

    @property
    def version(self) -> int: ...

    def list(
        self, *, run: Any = None, subsystem: str | None = None, include_inactive: bool = False
    ) -> builtins.list[Flag]: ...

    def active(self, run_numbers: Any) -> dict[int, builtins.list[Flag]]: ...

    def __getitem__(self, flag_id: int) -> Flag: ...

    def add(
        self,
        *,
        runs: Any = None,
        run: Any = None,
        start: float | None = None,
        stop: float | None = None,
        subsystem: str | None = None,
        severity: str | None = None,
        reason: str | None = None,
        supersedes: int | None = None,
    ) -> Flag: ...

    def withdraw(self, flag_id: int, *, reason: str) -> None: ...


class ProductsAPI(ProductRecords, Protocol):
    """``la.products``: what steps made (:class:`labledger.lineage.products.Products`), and
    what a product asks of them."""

    def __getitem__(self, ref: str) -> Product: ...

    def search(
        self,
        *,
        step: Any = None,
        run: int | None = None,
        status: str | None = "complete",
        limit: int | None = None,
    ) -> list[Product]: ...


class EventsAPI(Protocol):
    """``la.events(level)``: a query of per-event tables (:class:`labledger.events.EventQuery`)."""

    def with_parent(self, level: int) -> EventsAPI: ...

    def to_arrow(self) -> pyarrow.Table: ...

    def to_pandas(self) -> pandas.DataFrame: ...

    def count(self) -> int: ...


class LiveStream(Protocol):
    """A stream of a live run a DAQ writes (:class:`labledger.live.Stream`, or the remote one
    posting to a server): its blocks, numbered from 0, then its seal."""

    blocks: int  # written and acknowledged: the next block's number
    samples: int
    sealed: bool

    @property
    def name(self) -> str: ...

    def write(self, block: np.ndarray[Any, Any]) -> int: ...


class LiveWriter(Protocol):
    """What ``la.acquisition(...)`` gives, here (:class:`labledger.live.Acquisition`) or
    through a server: declare streams, start, write, then close (a ``with`` block does; an
    exception leaving it aborts the run)."""

    run: int

    @property
    def state(self) -> State: ...

    def stream(
        self, name: str, *, dtype: object, rate: float, shape: tuple[int, ...] = ()
    ) -> LiveStream: ...

    def prepare(self) -> None: ...

    def start(self) -> None: ...

    def write(self, blocks: Mapping[Any, np.ndarray[Any, Any]]) -> dict[str, int]: ...

    def stop(self) -> None: ...

    def close(self) -> None: ...

    def abort(self, reason: str) -> None: ...

    def fail(self, reason: str) -> None: ...

    def __enter__(self) -> LiveWriter: ...

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


class ArchiveAPI(Protocol):
    """What users call on an archive, wherever it is (see DESIGN.md, "The public interface")."""

    runs: Runs

    @property
    def catalog(self) -> RunCatalog: ...

    @property
    def store(self) -> Store: ...

    # reading
    @property
    def logs(self) -> Logs: ...

    @property
    def config(self) -> ConfigHistory: ...

    @property
    def calibrations(self) -> Calibrations: ...

    def summary(self) -> Summary: ...

    def signals(
        self,
        names: Sequence[str],
        *,
        runs: Sequence[Run] | None = None,
        calibration: dict[str, str] | None = None,
        time: TimeWindow | None = None,
        workers: int | None = None,
    ) -> xarray.Dataset: ...

    def events(
        self, level: int, *, runs: Sequence[int] | None = None, stream: str | None = None
    ) -> EventsAPI: ...

    def subscribe(
        self, kinds: Sequence[str] = ("run", "flag", "product"), *, timeout: float | None = None
    ) -> Iterator[dict[str, Any]]: ...

    # raw files in, and checked
    def ingest(
        self,
        paths: Sequence[str | os.PathLike[str]],
        *,
        run: int | None = None,
        format: str | None = None,
        progress: Callable[[int, int], None] | None = None,
        project: str = DEFAULT_PROJECT,
        limits: Mapping[str, int | str] | None = None,
        origin: str | None = None,
    ) -> list[IngestResult]: ...

    def check(
        self,
        *,
        repair: bool = False,
        older_than: float = OLDER_THAN_MINUTES,
        progress: Callable[[int, int], None] | None = None,
    ) -> CheckReport: ...

    # lineage
    @property
    def products(self) -> ProductsAPI: ...

    def compute(
        self, step: Any, runs: Any = None, *, inputs: Any = None, where: str = "here", **params: Any
    ) -> Product: ...

    def lineage(
        self, ref: str | int, direction: str = "up", depth: int | None = None
    ) -> Lineage: ...

    def stale(self) -> list[Stale]: ...

    def recompute(self, stale: bool = True, products: Sequence[Product] = ()) -> list[Product]: ...

    def reproduce(self, ref: str | Product) -> Reproduction: ...

    def openlineage(self, since: str | datetime | None = None) -> list[dict[str, Any]]: ...

    # mistakes undone, and data quality
    @property
    def withdrawals(self) -> Withdrawals: ...

    def withdraw(self, run: Any, *, reason: str) -> Withdrawal: ...

    def restore(self, run: Any, *, reason: str) -> Withdrawal: ...

    @property
    def flags(self) -> FlagsAPI: ...

    def flag(
        self,
        *,
        runs: Any = None,
        run: Any = None,
        start: float | None = None,
        stop: float | None = None,
        subsystem: str | None = None,
        severity: str | None = None,
        reason: str | None = None,
        supersedes: int | None = None,
    ) -> Flag: ...

    def good_runs(
        self,
        name: str,
        *,
        query: dict[str, Any] | None = None,
        require: Sequence[str] | str = (),
        version: int | None = None,
        reason: str = "",
    ) -> GoodRunList: ...

    def close(self) -> None: ...

    def acquisition(
        self,
        *,
        run: int,
        structure: str,
        metadata: Mapping[str, Any] | None = None,
        waive: Mapping[str, str] | None = None,
        lease: float = 30.0,
    ) -> LiveWriter: ...

    # what a run asks through its home (ArchiveHome)
    def _signal(
        self,
        run: Run,
        name: str,
        *,
        calibration: str | None,
        time: TimeWindow | None,
        points: int | None,
    ) -> xarray.DataArray: ...

    def _follow(
        self, run: Run, name: str, *, cursor: Cursor | None, calibration: str | None
    ) -> Iterator[Piece]: ...


class ArchiveHome:
    """What a run asks of its archive (:class:`labledger.runs.RunHome`), answered by the
    archive's calls: where runs meet the machine, quality, lineage and export, the same for a
    local archive and one through a server."""

    def __init__(self, archive: ArchiveAPI):
        self._archive = archive

    def __repr__(self) -> str:
        return repr(self._archive)

    @property
    def catalog(self) -> RunCatalog:
        return self._archive.catalog

    @property
    def store(self) -> Store:
        return self._archive.store

    def signal(
        self,
        run: Run,
        name: str,
        *,
        calibration: str | None,
        time: TimeWindow | None,
        points: int | None,
    ) -> xarray.DataArray:
        return self._archive._signal(run, name, calibration=calibration, time=time, points=points)

    def follow(
        self, run: Run, name: str, *, cursor: Cursor | None, calibration: str | None
    ) -> Iterator[Piece]:
        return self._archive._follow(run, name, cursor=cursor, calibration=calibration)

    # the machine and export load pint, pydantic and h5py: when first asked, not at import

    def machine(self, run: Run) -> Machine:
        from labledger.machine import Machine

        return Machine(run, self._archive.config.at(run))

    def flags(self, run: Run) -> list[Flag]:
        return self._archive.flags.active([run.number])[run.number]

    def product(self, run: Run, step: Any, params: dict[str, Any]) -> Product:
        from labledger.lineage.compute import product_of

        return product_of(self._archive, run, step, params)

    def export(
        self, run: Run, path: str | os.PathLike[str], format: str, *, force: bool
    ) -> Exported:
        from labledger.export import export

        return export(run, path, format, force=force)


# -- what both archives answer the same way, from their parts ----------------------------------


def read_here(
    archive: ArchiveAPI,
    run: Run,
    name: str,
    *,
    calibration: str | None,
    time: TimeWindow | None,
    points: int | None = None,
) -> xarray.DataArray:
    """:meth:`Run.signal` read here, from the stored chunks and the machine's logs."""
    from labledger.machine.signals import read

    snapshot = archive.logs.current()
    return read(run, name, calibration=calibration, time=time, points=points, snapshot=snapshot)


def signals_of(
    archive: ArchiveAPI,
    names: Sequence[str],
    runs: Sequence[Run | int] | None,
    *,
    calibration: dict[str, str] | None,
    time: TimeWindow | None,
    workers: int | None,
) -> xarray.Dataset:
    """:meth:`ArchiveAPI.signals`: the catalog asked once, runs read by ``workers`` threads."""
    from labledger.machine.signals import read_many

    chosen = (
        list(archive.runs)
        if runs is None
        else [r if isinstance(r, Run) else archive.runs[r] for r in runs]
    )
    return read_many(
        chosen,
        names,
        logs=archive.logs,
        catalog=archive.catalog,
        store=archive.store,
        calibration=calibration,
        time=time,
        workers=workers,
    )
