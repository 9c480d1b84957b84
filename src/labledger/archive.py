"""The Archive: the one object users hold, local or (later) remote.

An embedded archive is one folder: ``labledger.toml`` (what this is, where the catalog and
store are), ``catalog.sqlite`` and ``store/``. A shared archive keeps its catalog in PostgreSQL
and its store on object storage; ``labledger.open`` takes the folder or the catalog URL.
"""

from __future__ import annotations

import functools
import os
import re
import tomllib
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import tomli_w

from labledger.catalog import Catalog
from labledger.catalog.database import display_url
from labledger.catalog.summary import summarize
from labledger.display import html_table
from labledger.errors import ArchiveExists, InvalidArgument, NotAnArchive
from labledger.ids import DEFAULT_PROJECT
from labledger.ingest import plan
from labledger.integrity import check
from labledger.interface import ArchiveAPI, ArchiveHome, read_here, signals_of
from labledger.records import OLDER_THAN_MINUTES
from labledger.reports import CheckReport, IngestResult
from labledger.runs import Piece, Run, Runs, TimeWindow
from labledger.store import Store, open_store
from labledger.structures import Against, Resolve, Structures
from labledger.summary import Summary
from labledger.times import parse_when
from labledger.withdrawals import Withdrawal, Withdrawals

if TYPE_CHECKING:
    import xarray

    from labledger.acquire import LiveSite
    from labledger.acquire.saver import Saver
    from labledger.events import EventQuery
    from labledger.lineage.compute import Reproduction
    from labledger.lineage.graph import Lineage
    from labledger.lineage.product import Product, Stale
    from labledger.lineage.products import Products
    from labledger.lineage.step import Step
    from labledger.live import Acquisition, Cursor
    from labledger.machine.calibration import Calibrations
    from labledger.machine.configuration import ConfigHistory
    from labledger.machine.logs import Logs
    from labledger.quality import Flag, GoodRunList
    from labledger.quality.recorded import Flags

CONFIG = "labledger.toml"
DEFAULT_CATALOG = "catalog.sqlite"
DEFAULT_STORE = "store"
_URL_SCHEMES = ("sqlite:", "postgresql:", "postgresql+", "postgres:")
_SECRET = re.compile(r"secret|password|token|^key$|access_key|credential", re.I)


class Archive:
    """Runs, their raw files and arrays, and the catalog that finds them.

    >>> import labledger as ll, tempfile
    >>> la = ll.init(tempfile.mkdtemp() + "/ishtar")
    >>> len(la.runs)
    0
    """

    catalog: Catalog
    store: Store
    runs: Runs

    def __init__(
        self,
        catalog: Catalog,
        store: Store,
        path: Path | None = None,
        live: dict[str, Any] | None = None,
    ):
        self.catalog = catalog
        self.store = store
        self.path = path
        self.runs = Runs(ArchiveHome(self))
        self._live_config = live or {}

    # the machine is imported when first used: a listing of runs need not load pint or pydantic

    @functools.cached_property
    def logs(self) -> Logs:
        from labledger.machine.logs import Logs

        return Logs(self.catalog)

    @functools.cached_property
    def config(self) -> ConfigHistory:
        """The testbed's configuration history: ``at(run)``, ``diff(a, b)``, ``log()``,
        ``load(file)``, ``wire({...})``."""
        from labledger.machine.configuration import ConfigHistory

        return ConfigHistory(self.logs, self.runs)

    @functools.cached_property
    def calibrations(self) -> Calibrations:
        """The calibrations: ``["name@N"]``, ``list()``, ``add(...)``, ``for_run(...)``."""
        from labledger.machine.calibration import Calibrations

        return Calibrations(self.logs, self.catalog)

    # -- live runs: Redis is asked only when they are ---------------------------------------------

    @functools.cached_property
    def live(self) -> LiveSite:
        """Where the archive's live runs are: the Redis and the key prefix (``[live] redis``
        in labledger.toml, else ``$LABLEDGER_REDIS``, else Redis on this machine)."""
        from labledger.acquire import LiveSite

        return LiveSite.of(self.catalog, self._live_config)

    def acquisition(
        self,
        *,
        run: int,
        structure: str,
        metadata: Mapping[str, Any] | None = None,
        waive: Mapping[str, str] | None = None,
        lease: float = 30.0,
    ) -> Acquisition:
        """A run written live (docs/live.md): declare its streams, ``start()``, write blocks;
        leaving the ``with`` block closes it, an exception aborts it. It is recorded in the
        catalog when prepared; ``labledger saver`` keeps its data. A ``structure`` the archive
        has (:attr:`structures`) checks the metadata now, and the run closes incomplete if a
        channel it always saves is missing, unless ``waive`` ({name: reason}) waives it.

        >>> with la.acquisition(run=1271, structure="helicon-shot") as acq:  # doctest: +SKIP
        ...     ai3 = acq.stream("PXI M6251/ai3", dtype="int16", rate=1e6)
        ...     acq.start()
        ...     ai3.write(block)
        """
        from labledger.acquire.acquisition import ArchivedAcquisition

        return ArchivedAcquisition(
            self.catalog,
            self.live,
            run=run,
            structure=structure,
            metadata=metadata,
            waive=waive,
            lease=lease,
        )

    def saver(self, **options: Any) -> Saver:
        """The saver of the archive's live runs (``saver.serve(stop)`` until ``stop`` is set;
        ``labledger saver`` runs one)."""
        from labledger.acquire.saver import Saver

        return Saver(self.catalog, self.store, self.live, **options)

    def _follow(
        self, run: Run, name: str, *, cursor: Cursor | None, calibration: str | None
    ) -> Iterator[Piece]:
        """:meth:`Run.follow`, here where Redis and the store are."""
        from labledger.acquire.following import follow

        snapshot = self.logs.current()
        return follow(
            self.live,
            self.store,
            run,
            name,
            snapshot=snapshot,
            cursor=cursor,
            calibration=calibration,
        )

    @functools.cached_property
    def structures(self) -> Structures:
        """The structure descriptions, versioned: ``add(file, reason=...)``, ``["name"]``,
        ``["name@N"]``, ``list()`` (docs/structures.md)."""
        return Structures(self.catalog)

    def _resolver(self, number: int, started: datetime) -> Resolve:
        """Signal names to channel keys for run ``number`` as it will be recorded."""
        from labledger.machine.configuration import wiring_resolver

        return wiring_resolver(self.logs)(number, started)

    @property
    def _where(self) -> str:
        return str(self.path) if self.path else self.catalog.display_url

    def __repr__(self) -> str:
        return f"<Archive {self._where}>"

    def _repr_html_(self) -> str:
        return html_table(self.summary().facts(), title=f"labledger archive {self._where}")

    def summary(self) -> Summary:
        """What the archive holds, in a few numbers: runs and their time span, raw files by
        format and size, the newest run, active flags, current products (``print`` it for a
        few lines; ``labledger summary`` prints the same).

        >>> import labledger as ll, tempfile
        >>> ll.init(tempfile.mkdtemp() + "/ishtar").summary().runs
        0
        """
        return summarize(self.catalog)

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the catalog's connections."""
        self.catalog.close()

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
        structure: str | None = None,
        waive: Mapping[str, str] | None = None,
    ) -> list[IngestResult]:
        """Ingest raw files: each becomes a run (numbered from ``run``, else from the digits in
        its name, else the next free number), or all of them one run when ``run`` is given.

        Bytes already kept are not ingested twice; a run is visible only once it is whole.
        ``progress(done, total)`` is called with byte counts as the work goes. The runs belong
        to ``project`` (who may read them through a server depends on it). What a file may
        declare is bounded (docs/ingest.md, "Limits"); ``limits`` raises some, by name
        (``{"columns": 50_000, "file_bytes": "64T"}``). ``origin`` is recorded as where the
        files came from instead of their folder here (the server records ``upload:<user>``).

        ``structure`` names a structure description (:attr:`structures`): each run's metadata
        is checked against it before anything is written, and a run lacking a channel it says
        is always saved is recorded incomplete ("incomplete: missing Pressure"), unless
        ``waive`` ({name: reason}) waives it; the waivers are kept in the run's metadata under
        ``labledger:waived`` (docs/structures.md).
        """
        against = None
        if structure is not None:
            kind = self.structures[structure]
            against = Against(kind, kind.check_waivers(waive), self._resolver)
        elif waive:
            raise InvalidArgument(
                "waivers waive what a structure says is always saved: name the structure too "
                "(structure=, or --structure)"
            )
        checked = plan(
            self.catalog,
            paths,
            run=run,
            format=format,
            project=project,
            limits=limits,
            own=self._own_files(),
            origin=origin,
            against=against,
        )
        total, done = checked.total_bytes, 0

        def advance(n: int) -> None:
            nonlocal done
            done += n
            if progress is not None:
                progress(min(done, total), total)

        return checked.execute(self.store, advance)

    def check(
        self,
        *,
        repair: bool = False,
        older_than: float = OLDER_THAN_MINUTES,
        progress: Callable[[int, int], None] | None = None,
    ) -> CheckReport:
        """Check every run against the catalog: each raw file's sha256, each array's shape,
        dtype and chunks; list the folders no run names (left by killed ingests). With
        ``repair``, remove those of them untouched for ``older_than`` minutes (an ingest
        writes its folder before the catalog names it). ``report.ok``: nothing damaged.

        >>> report = la.check()
        >>> report.ok, [p.message() for p in report.problems]
        (True, [])
        """
        return check(
            self.catalog, self.store, repair=repair, older_than=older_than, progress=progress
        )

    def _own_files(self) -> list[Path]:
        """The archive's folder, a local store and an SQLite catalog with its journals: only
        the store and the catalog open them, never ingest."""
        own = [self.path] if self.path is not None else []
        folder = self.store.local_path("")
        if folder is not None:
            own.append(folder)
        url = self.catalog.engine.url
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            own += [Path(f"{url.database}{end}") for end in ("", "-wal", "-shm", "-journal")]
        return own

    def subscribe(
        self, kinds: Sequence[str] = ("run", "flag", "product"), *, timeout: float | None = None
    ) -> Iterator[dict[str, Any]]:
        """Events from now on, as they are recorded by any process: a run closed, a flag
        added or withdrawn, a product made, and (``kinds`` naming them) a run withdrawn or
        restored ("withdrawal"), a live run reaching a state ("state") (dicts with ``kind``);
        for ``timeout`` s, or for ever. It returns once subscribed: whatever is recorded after
        it returns is heard.

        >>> for event in la.subscribe(["run"]):                        # doctest: +SKIP
        ...     print("new run", event["number"])
        """
        from labledger.notifications import watch

        return watch(self.catalog, kinds=kinds, timeout=timeout)

    def _signal(
        self,
        run: Run,
        name: str,
        *,
        calibration: str | None,
        time: TimeWindow | None,
        points: int | None,
    ) -> xarray.DataArray:
        """:meth:`Run.signal`, here where the data are (a remote archive asks its server)."""
        return read_here(self, run, name, calibration=calibration, time=time, points=points)

    def signals(
        self,
        names: Sequence[str],
        *,
        runs: Sequence[Run] | None = None,
        calibration: dict[str, str] | None = None,
        time: TimeWindow | None = None,
        workers: int | None = None,
    ) -> xarray.Dataset:
        """Signals of many runs as one ``xarray.Dataset`` over (run, time): each signal a
        variable, the calibration each run was read under a coordinate. The catalog is asked
        once, not per run; runs are read by ``workers`` threads (by default one for a local
        store, 16 for an object store); ``.to_dataframe()`` makes it one table.

        >>> both = la.signals(["Langmuir_I", "RF_Pfwd"], runs=la.runs.search(gas="Ar"))
        >>> dict(both.sizes), both["calibration_Langmuir_I"].values.tolist()
        ({'run': 4, 'time': 35000},
         ['langmuir_i@1', 'langmuir_i@1', 'langmuir_i@1', 'langmuir_i@2'])
        """
        return signals_of(self, names, runs, calibration=calibration, time=time, workers=workers)

    # -- lineage: steps, products, provenance --------------------------------------------------

    @functools.cached_property
    def products(self) -> Products:
        """The products steps made: ``la.products[id]``, ``.search(step=..., run=...)``."""
        from labledger.lineage.products import Products

        return Products(self)

    def compute(
        self,
        step: Step,
        runs: Any = None,
        *,
        inputs: Any = None,
        where: str = "here",
        **params: Any,
    ) -> Product:
        """Apply ``step`` to each of ``runs`` (runs, run numbers, a good-run list) or to each
        part of ``inputs`` (products), with ``params``; keep each result as a product with its
        provenance. What was computed before from the same inputs, code and parameters is
        reused, not computed again (``product.reused`` says so). One run or one product in,
        one product out; a list in, a set whose parts are the products. ``where="server"``
        computes next to the data, for an archive opened with ``labledger.connect``.

        >>> from labledger.sim.analysis import density
        >>> p = la.compute(density, la.runs.search(gas="Ar"))
        >>> p.reused, [part.run for part in p.parts]
        (True, [1234, 1235, 1245, 1255])
        """
        from labledger.lineage.compute import compute

        if where != "here":
            raise InvalidArgument(
                f"where={where!r}: this archive is opened here, next to its data; "
                "where='server' is for an archive opened with labledger.connect"
            )
        return compute(self, step, runs=runs, inputs=inputs, params=params)

    def lineage(self, ref: str | int, direction: str = "up", depth: int | None = None) -> Lineage:
        """Everything product ``ref`` came from (``direction="up"``: products, runs, raw files)
        or everything it fed (``"down"``; ``ref`` may also be a run number or run id).

        >>> from labledger.sim.analysis import density
        >>> p = la.compute(density, la.runs.search(gas="Ar"))
        >>> print(la.lineage(p.id))
        density@2 [set] ...
        ├── density@2 run 1234 [value] ...
        │   └── run 1234
        │       └── 01234_Data.tdms  sha256:...
        ...
        """
        from labledger.lineage.walk import lineage

        return lineage(self, ref, direction, depth)

    def stale(self) -> list[Stale]:
        """The current products that no longer reflect their inputs, with the reasons: a flag
        added or withdrawn on a run they read, a run they read withdrawn, a newer calibration
        in force, an input product recomputed, a newer good-run list."""
        from labledger.lineage.products import stale

        return stale(self)

    def recompute(self, stale: bool = True, products: Sequence[Product] = ()) -> list[Product]:
        """Compute again the stale products (``stale=True``) and ``products``; the new ones
        supersede the old, which stay readable."""
        from labledger.lineage.compute import recompute
        from labledger.lineage.products import stale as find_stale

        chosen = {p.id: p._row for p in products}
        if stale:
            chosen.update({s.product.id: s.product._row for s in find_stale(self)})
        return recompute(self, sorted(chosen.values(), key=lambda r: (r.created, r.id)))

    def reproduce(self, ref: str | Product) -> Reproduction:
        """Run product ``ref``'s step again on exactly what its record says it read; report
        whether the output is identical and what differs in code and environment."""
        from labledger.lineage.compute import reproduce

        product = self.products[ref] if isinstance(ref, str) else ref
        return reproduce(self, product)

    def openlineage(self, since: str | datetime | None = None) -> list[dict[str, Any]]:
        """Every computation (since ``since``) as OpenLineage run events: START, then
        COMPLETE or FAIL, ready to write as JSON lines or post to a lineage server."""
        from labledger.lineage.openlineage import events

        return list(events(self, parse_when(since, "since")))

    def events(
        self, level: int, *, runs: Sequence[int] | None = None, stream: str | None = None
    ) -> EventQuery:
        """The current events of processing ``level``: ``.with_parent(level=2)`` joins each to
        its ancestor; ``.to_pandas()``, ``.to_arrow()``, ``.count()``.

        >>> table = la.events(level=4, runs=[1255]).with_parent(level=2).to_pandas()
        >>> table[["run", "event", "parent_event", "l2_event", "l2_start"]].head(2)
            run  event  parent_event  l2_event  l2_start
        0  1255      0             1         1      0.01
        1  1255      1             2         2      0.02
        """
        from labledger.events import EventQuery
        from labledger.lineage.compute import event_files

        return EventQuery(
            self.store, lambda lvl: event_files(self, lvl, runs), level, runs=runs, stream=stream
        )

    # -- mistakes undone: withdrawn runs -------------------------------------------------------

    @functools.cached_property
    def withdrawals(self) -> Withdrawals:
        """Withdrawn runs: ``withdraw(run, reason=...)``, ``restore(run, reason=...)``,
        ``list(run=..., include_restored=...)`` (the history), ``active(run_ids)``.

        >>> la.withdraw(1234, reason="a note, not a shot")
        <Withdrawal 1 of run 1234 (a note, not a shot), active>
        >>> la.withdrawals.list()
        [<Withdrawal 1 of run 1234 (a note, not a shot), active>]
        """
        return Withdrawals(self.catalog)

    def withdraw(self, run: Any, *, reason: str) -> Withdrawal:
        """Withdraw a run ingested by mistake (a number, an id or a Run), with the reason. It
        leaves listings, searches and good-run lists; ``la.runs[n]`` and ``la.runs[id]`` still
        read it, and say so (``run.withdrawn``); products that read it become stale. Nothing
        is deleted, and :meth:`restore` undoes it.

        >>> la.withdraw(1234, reason="a note, not a shot")
        <Withdrawal 1 of run 1234 (a note, not a shot), active>
        """
        return self.withdrawals.withdraw(run, reason=reason)

    def restore(self, run: Any, *, reason: str) -> Withdrawal:
        """Undo the withdrawal of a run, with the reason: it is listed and searched again.
        The withdrawal stays in the history (returned, with this restoration on it).

        >>> la.withdraw(1234, reason="a note, not a shot")
        <Withdrawal 1 of run 1234 (a note, not a shot), active>
        >>> la.restore(1234, reason="it was a shot after all")
        <Withdrawal 1 of run 1234 (a note, not a shot), restored by 2>
        """
        return self.withdrawals.restore(run, reason=reason)

    # -- data quality: flags and good-run lists (labledger.quality, imported when first used) --

    @functools.cached_property
    def flags(self) -> Flags:
        """The data-quality flags: ``add(...)``, ``withdraw(id, reason=...)``, ``list(...)``,
        ``active(runs)``, ``[id]``.

        >>> la.flags.list(run=1245, include_inactive=True)
        [<Flag 2: probe bad on run 1245 from 0.2 to 0.3 s (arc), active>]
        """
        from labledger.quality.recorded import Flags

        return Flags(self.catalog)

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
    ) -> Flag:
        """Flag runs, or intervals of runs: ``runs=`` or ``run=``, ``subsystem=``,
        ``severity=`` ("good", "warning", "bad"), ``reason=``, and optionally ``start=``/
        ``stop=`` (s on the run's time axis) and ``supersedes=`` (the id of the flag it
        corrects). See :meth:`labledger.quality.recorded.Flags.add`.

        >>> la.flag(runs=[1234, 1235, 1245], subsystem="rf", severity="warning",
        ...         reason="matching network drifting")
        <Flag 3: rf warning on runs 1234-1235, 1245 (matching network drifting), active>
        >>> la.flag(run=1255, start=0.4, stop=0.45, subsystem="probe", severity="bad",
        ...         reason="arc")
        <Flag 4: probe bad on run 1255 from 0.4 to 0.45 s (arc), active>
        """
        return self.flags.add(
            runs=runs,
            run=run,
            start=start,
            stop=stop,
            subsystem=subsystem,
            severity=severity,
            reason=reason,
            supersedes=supersedes,
        )

    def good_runs(
        self,
        name: str,
        *,
        query: dict[str, Any] | None = None,
        require: Sequence[str] | str = (),
        version: int | None = None,
        reason: str = "",
    ) -> GoodRunList:
        """A good-run list. With ``query`` (``runs.search`` keywords) or ``require`` (the
        subsystems whose bad flags exclude a run; any subsystem's if none): evaluated now and
        recorded as a new version if its content changed. Without: the newest version, or
        ``version`` (also ``"name@N"``).

        >>> grl = la.good_runs("standard", query={"gas": "Ar"}, require=["power", "probe"])
        >>> grl.label, list(grl), grl.livetime
        ('standard@1', [1245, 1255], 1.3)
        """
        from labledger.quality.recorded import GoodRunLists

        return GoodRunLists(self.runs, self.catalog)(
            name, query=query, require=require, version=version, reason=reason
        )


def open(
    target: str | os.PathLike[str],
    *,
    store: str | None = None,
    storage_options: dict[str, Any] | None = None,
) -> Archive:
    """Open an archive: its folder, or the URL of its catalog (the catalog knows its store;
    ``store`` overrides it).

    >>> la = labledger.open("ishtar")                                    # doctest: +SKIP
    >>> la = labledger.open("postgresql://db/ll", store="s3://bucket/ll")  # doctest: +SKIP
    """
    text = os.fspath(target)
    if text.startswith(_URL_SCHEMES):
        catalog = Catalog.open(text)
        try:
            settings = catalog.settings()
            store_url = store or settings.get("store")
            options = (
                storage_options
                if storage_options is not None
                else settings.get("store_options", {})
            )
            if not store_url:
                raise NotAnArchive(f"catalog {display_url(text)} does not say where its store is")
            return Archive(catalog, open_store(store_url, options))
        except BaseException:
            catalog.close()
            raise
    folder = Path(text).expanduser()
    config = _read_config(folder)
    catalog = Catalog.open(_catalog_url(folder, config["catalog"]))
    try:
        store_url = store or _store_url(folder, config.get("store", DEFAULT_STORE))
        options = (
            storage_options if storage_options is not None else config.get("store_options", {})
        )
        return Archive(
            catalog, open_store(store_url, options), folder.resolve(), config.get("live")
        )
    except BaseException:
        catalog.close()
        raise


def init(
    path: str | os.PathLike[str],
    *,
    catalog: str | None = None,
    store: str | None = None,
    storage_options: dict[str, Any] | None = None,
) -> Archive:
    """Create an archive in the folder ``path``: by default embedded (SQLite catalog and store
    inside the folder); ``catalog`` a PostgreSQL URL and ``store`` an ``s3://`` URL share it.

    >>> la = labledger.init("ishtar")                                    # doctest: +SKIP
    >>> la = labledger.init("lab", catalog="postgresql://db/ll", store="s3://b/l")  # doctest: +SKIP
    """
    folder = Path(path).expanduser()
    if (folder / CONFIG).exists():
        raise ArchiveExists(f"{folder} is already a labledger archive; open it instead")
    if folder.exists() and not folder.is_dir():
        raise ArchiveExists(f"{folder} exists and is not a folder")
    if folder.exists() and any(folder.iterdir()):
        raise ArchiveExists(f"{folder} is not empty; create the archive in a new or empty folder")
    catalog_text = catalog or DEFAULT_CATALOG
    store_text = store or DEFAULT_STORE
    options = dict(storage_options or {})
    secrets = sorted(k for k in _flat_keys(options) if _SECRET.search(k))
    if secrets:
        raise InvalidArgument(
            f"storage option {secrets[0]!r} looks like a credential, and labledger writes its "
            "options into the archive's settings: give credentials through the environment "
            "(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, ...) or the provider's config files"
        )
    created_folder = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    try:
        objects = open_store(_store_url(folder, store_text), options)
        objects.check_writable()
        settings = {"store": objects.url, "store_options": options}
        cat = Catalog.create(_catalog_url(folder, catalog_text), settings)
        _write_config(folder, catalog_text, store_text, options)
    except BaseException:
        _remove_new(folder, created_folder)
        raise
    return Archive(cat, objects, folder.resolve())


def migrate_catalog(target: str | os.PathLike[str]) -> str:
    """Bring the catalog of the archive at ``target`` (folder or catalog URL) to the schema this
    labledger expects; return the version it is at."""
    from labledger.catalog import database

    text = os.fspath(target)
    if not text.startswith(_URL_SCHEMES):
        folder = Path(text).expanduser()
        text = _catalog_url(folder, _read_config(folder)["catalog"])
    engine = database.connect(text)
    try:
        if database.current_revision(engine) is None:
            raise NotAnArchive(f"catalog {display_url(text)} holds no labledger archive")
        database.migrate(engine)
        return database.head_revision()
    finally:
        engine.dispose()


def _flat_keys(options: dict[str, Any]) -> list[str]:
    keys = []
    for key, value in options.items():
        keys.append(key)
        if isinstance(value, dict):
            keys += _flat_keys(value)
    return keys


def _read_config(folder: Path) -> dict[str, Any]:
    config_path = folder / CONFIG
    if not config_path.is_file():
        if not folder.exists():
            raise NotAnArchive(
                f"{folder} does not exist; create an archive with `labledger init {folder}`"
            )
        raise NotAnArchive(
            f"{folder} is not a labledger archive (it has no {CONFIG}); create one with "
            f"`labledger init {folder}`"
        )
    try:
        config = tomllib.loads(config_path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise NotAnArchive(f"{config_path}: not readable ({exc})") from None
    if "catalog" not in config:
        raise NotAnArchive(f"{config_path}: says nothing of the catalog (catalog = ...)")
    return config


def _write_config(folder: Path, catalog: str, store: str, options: dict[str, Any]) -> None:
    config: dict[str, Any] = {"catalog": catalog, "store": store}
    if options:
        config["store_options"] = options
    text = "# A labledger archive: open it with labledger.open() on this folder.\n"
    (folder / CONFIG).write_text(text + tomli_w.dumps(config))


def _catalog_url(folder: Path, value: str) -> str:
    if value.startswith(_URL_SCHEMES):
        return value
    return f"sqlite:///{(folder / value).resolve()}"  # a path: an SQLite file in the folder


def _store_url(folder: Path, value: str) -> str:
    return value if "://" in value else str((folder / value).resolve())


def _remove_new(folder: Path, created_folder: bool) -> None:
    """Undo a failed init: remove what it made, nothing else."""
    import shutil

    if created_folder:
        shutil.rmtree(folder, ignore_errors=True)
    else:
        for child in folder.iterdir():
            shutil.rmtree(child) if child.is_dir() else child.unlink()


if TYPE_CHECKING:  # the type checker holds Archive to every call and signature of ArchiveAPI
    _: type[ArchiveAPI] = Archive
