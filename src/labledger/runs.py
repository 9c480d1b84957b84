"""What users hold: runs, their channels, raw files and structure trees.

>>> run = la.runs[1234]                                  # la = ll.open("ishtar")
>>> run.channels["PXI M6251/ai3"]
<Channel 'PXI M6251/ai3' of run 1234: (35000,) int16 in V>
>>> run.channels["PXI M6251/ai3"][10_000:10_005]
array([-4047, -4047, -4045, -4049, -4052], dtype=int16)
"""

from __future__ import annotations

import difflib
import os
import sys
import time as clock
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import IO, TYPE_CHECKING, Any, Literal, Protocol

import numpy as np

import labledger.reads as reads
from labledger.display import HTML_ROWS, html_table, human_size
from labledger.errors import Conflict, DataWarning, InvalidArgument, NotFound
from labledger.formats import Axis
from labledger.formats.base import OwnScaling, walk_tree
from labledger.formats.registry import own_scaling
from labledger.formats.values import single, without_nul
from labledger.records import (
    CLOSED,
    ENDED,
    LIVE,
    MAX_RUN_NUMBER,
    NUMBER_KEY,
    RUN_STATES,
    ChannelRecord,
    RunCatalog,
    RunRecord,
    RunStateRecord,
    SourceRecord,
)
from labledger.store import AnyArray, Store, open_array
from labledger.store.dtypes import from_text
from labledger.store.pyramid import preview
from labledger.times import parse_when
from labledger.withdrawals import Withdrawal, Withdrawals

if TYPE_CHECKING:
    import xarray

    # what the layers above make of a run, named for the types of RunHome (nothing runs)
    from labledger.export import Exported
    from labledger.live import Cursor
    from labledger.machine import Machine
    from labledger.quality import Flag


# seconds on a run's time axis, from and to (None: its start, its end)
TimeWindow = tuple[float | None, float | None]
_WAIT = 0.05  # s between looks at a live run's state
_COPY_FREE = 1 << 20  # from this many samples, a time index costs more to copy than to assign


def nonfinite(values: np.ndarray) -> int:
    """How many values are NaN or inf. A sum is finite only if every value is (or, rarely, it
    overflows), so the exact count is made only when the sum is not."""
    if values.dtype.kind != "f" or np.isfinite(np.sum(values)):
        return 0
    return int(np.count_nonzero(~np.isfinite(values)))


def _outside() -> int:
    """The stack level, from the caller of this function's caller, of the first frame outside
    labledger: where a warning belongs, whatever path inside led to it."""
    frame, level = sys._getframe(2), 2
    while frame.f_back is not None and frame.f_globals.get("__name__", "").startswith("labledger."):
        frame, level = frame.f_back, level + 1
    return level


def signal_array(
    values: np.ndarray, time: np.ndarray | None, name: str, attrs: dict[str, Any]
) -> xarray.DataArray:
    """A signal as users get it, from a local archive or a server: ``values`` over ``time``
    (s; None: no time axis), ``attrs`` with its units, run and calibration. NaN or inf values
    are kept, counted in ``attrs["nonfinite"]`` (as counted where they were read, if there)
    and warned of.

    >>> i = signal_array(np.array([1.0, 2.0]), np.array([0.0, 0.5]), "I", {"units": "A"})
    >>> i.attrs, i.time.attrs, i.sel(time=0.5).item()
    ({'units': 'A'}, {'units': 's', 'long_name': 'time'}, 2.0)
    """
    import pandas as pd
    import xarray

    bad = int(attrs.get("nonfinite") or nonfinite(values))
    if bad:
        attrs = {**attrs, "nonfinite": bad}
        warnings.warn(
            f"run {attrs.get('run')}: {bad} of {values.size} values of {name} are NaN or inf "
            f"under calibration {attrs.get('calibration')}; they are kept, and counted in "
            "attrs['nonfinite']",
            DataWarning,
            stacklevel=_outside(),  # where the user's code asked for the signal
        )
    if time is None:
        return xarray.DataArray(values, dims=("time",), name=name, attrs=attrs)
    index = pd.Index(time, copy=False, name="time")
    if index.size < _COPY_FREE:
        array = xarray.DataArray(
            values, dims=("time",), coords={"time": index}, name=name, attrs=attrs
        )
    else:  # the constructor deep-copies an index (12 ms for 5 M samples); assigning does not
        array = xarray.DataArray(values, dims=("time",), name=name, attrs=attrs)
        array.coords["time"] = index
    array.time.attrs.update(units="s", long_name="time")
    return array


class RunHome(Protocol):
    """What a run needs from the archive it belongs to: the catalog and the store to read
    itself, and, for what the layers above the runs know (the machine, quality, lineage,
    export), the archive's answer. The archive wires them (labledger.archive); a run never
    holds the archive itself."""

    @property
    def catalog(self) -> RunCatalog: ...

    @property
    def store(self) -> Store: ...

    def signal(
        self,
        run: Run,
        name: str,
        *,
        calibration: str | None,
        time: TimeWindow | None,
        points: int | None,
    ) -> xarray.DataArray: ...

    def follow(
        self, run: Run, name: str, *, cursor: Cursor | None, calibration: str | None
    ) -> Iterator[Piece]: ...

    def machine(self, run: Run) -> Machine: ...

    def flags(self, run: Run) -> list[Flag]: ...

    def product(self, run: Run, step: Any, params: dict[str, Any]) -> Any: ...

    def export(
        self, run: Run, path: str | os.PathLike[str], format: str, *, force: bool
    ) -> Exported: ...


@dataclass(frozen=True)
class RawFile:
    """A raw file kept byte for byte, as it came from the acquisition system."""

    name: str
    size: int
    format: str
    sha256: str
    key: str  # where the store keeps it
    original_path: str
    modified: datetime
    ingested: datetime
    ingested_by: str
    problems: tuple[str, ...]
    _store: Store

    def open(self) -> IO[bytes]:
        """The kept bytes, to read like a file."""
        return self._store.open_read(self.key)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "size": self.size,
            "format": self.format,
            "sha256": self.sha256,
            "key": self.key,
            "original_path": self.original_path,
            "modified": self.modified.isoformat(),
            "ingested": self.ingested.isoformat(),
            "ingested_by": self.ingested_by,
            "problems": list(self.problems),
        }


class Run:
    """One run: a shot, a scan, a file's worth of acquisition.

    ``number``, ``id`` (time-sortable UUIDv7), ``state``, ``started``, ``ended``, ``metadata``
    (searchable keys), ``sources`` (the raw files), ``channels`` (the arrays, by the source's own
    path), :meth:`tree` (the structure as the source has it) and :attr:`withdrawn`.
    """

    def __init__(self, home: RunHome, row: RunRecord, *, listed: bool = False):
        self._home = home
        self._row = row
        # a listing leaves withdrawn runs out: its runs are known not to be, without asking
        self._withdrawal: Withdrawal | Literal[False] | None = None if listed else False
        self.number: int = row.number
        self.id: str = row.id
        self.started: datetime = row.started
        self.ended: datetime | None = row.ended
        self.created: datetime = row.created
        self.metadata: dict[str, Any] = dict(row.meta)

    def __repr__(self) -> str:
        w = self._known_withdrawal()
        withdrawn = f" WITHDRAWN ({w.reason})" if w else ""
        when = f"{self.started:%Y-%m-%d %H:%M:%S}"
        return f"<Run {self.number} {self.state} {when} {self.id}{withdrawn}>"

    # -- a live run: its state as it moves, asked of the catalog until it has ended ----------

    @property
    def state(self) -> str:
        """``closed`` for a run from files; a live run's state now: ``created``, ``prepared``,
        ``started``, ``stopped``, then ``closed`` once saved whole, or ``aborted``/``failed``."""
        return self._fresh().state

    @property
    def complete(self) -> bool:
        """Whether every stream was sealed and durably saved, and every channel its structure
        always saves is there (or waived); :attr:`reason` says why not."""
        return self._fresh().complete

    @property
    def reason(self) -> str | None:
        """Why the run is not complete, or why it was aborted or failed."""
        return self._fresh().reason

    def states(self) -> list[RunStateRecord]:
        """The states a live run reached, with when and why (none for a run from files)."""
        return self._home.catalog.states(self.id)

    def wait(self, state: str = CLOSED, *, timeout: float = 30.0) -> Run:
        """Wait until the run has reached ``state`` (``closed``: saved whole); the run.
        :class:`~labledger.errors.Conflict` if it ended otherwise, ``TimeoutError`` after
        ``timeout`` s."""
        if state not in RUN_STATES:
            raise InvalidArgument(f"state={state!r}: a run is one of {', '.join(RUN_STATES)}")
        deadline = clock.monotonic() + timeout
        while True:
            now = self._fresh().state
            if now == state or state in {s.state for s in self.states()}:
                return self
            if now in ENDED:
                raise Conflict(f"run {self.number} ended {now} ({self.reason}), not {state}")
            if clock.monotonic() >= deadline:
                raise TimeoutError(f"run {self.number} is still {now} after {timeout:g} s")
            clock.sleep(_WAIT)

    def follow(
        self, name: str, *, cursor: Cursor | None = None, calibration: str | None = None
    ) -> Iterator[Piece]:
        """The signal (or stream) ``name`` of a live run as it arrives, block by block,
        calibrated as :meth:`signal` would; from ``cursor`` (a piece's) to resume. A saved run
        is followed from the store, the same blocks in the same order.

        >>> for piece in la.runs.live().follow("Langmuir_I"):          # doctest: +SKIP
        ...     print(piece.time[0], piece.values.max(), piece.unit)
        """
        return self._home.follow(self, name, cursor=cursor, calibration=calibration)

    def _fresh(self) -> RunRecord:
        """The run's record, read again while it may change (a live run not yet ended)."""
        if self._row.state not in ENDED:
            row = self._home.catalog.by_id(self.id)
            if row is not None and (row.state, row.complete) != (
                self._row.state,
                self._row.complete,
            ):
                self._row, self.started, self.ended = row, row.started, row.ended
                for cached in ("_sources", "sources", "channels"):  # saved now
                    self.__dict__.pop(cached, None)
        return self._row

    @property
    def withdrawn(self) -> Withdrawal | None:
        """The withdrawal in force on this run (why, who, when), or None if it is not
        withdrawn; asked of the catalog each time, as runs are withdrawn and restored.

        >>> la.runs[1234].withdrawn is None
        True
        >>> _ = la.withdraw(1234, reason="a note, not a shot")
        >>> la.runs[1234].withdrawn.reason
        'a note, not a shot'
        """
        self._withdrawal = self._ask_withdrawal()
        return self._withdrawal

    def _ask_withdrawal(self) -> Withdrawal | None:
        return Withdrawals(self._home.catalog).active([self.id]).get(self.id)

    def _known_withdrawal(self) -> Withdrawal | None:
        """The withdrawal as first asked (or as the listing knew it): a repr or a to_dict does
        not ask the catalog again; :attr:`withdrawn` does."""
        if self._withdrawal is False:
            self._withdrawal = self._ask_withdrawal()
        return self._withdrawal

    def _repr_html_(self) -> str:
        ended = f"{self.ended:%Y-%m-%d %H:%M:%S}" if self.ended else None
        w = self._known_withdrawal()
        said = f"{w.reason} (by {w.author}, {w.created:%Y-%m-%d %H:%M})" if w else ""
        facts = ([("WITHDRAWN", said)] if w else []) + [
            ("id", self.id),
            ("state", self.state),
            ("started (UTC)", f"{self.started:%Y-%m-%d %H:%M:%S}"),
            ("ended (UTC)", ended),
            ("channels", self._row.n_channels),
            ("arrays", f"{human_size(self.data_bytes)} decoded"),
            ("configuration", self.config_version),
        ]
        files = [(s.name, s.format, human_size(s.size), s.sha256) for s in self._sources]
        meta = list(self.metadata.items())
        return (
            html_table(facts, title=f"run {self.number}")
            + html_table(files, header=["raw file", "format", "size", "sha256"])
            + html_table(meta, header=["metadata", "value"])
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Run) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    @cached_property
    def _sources(self) -> list[SourceRecord]:
        return self._home.catalog.sources(self.id)

    @cached_property
    def sources(self) -> list[RawFile]:
        """The raw files the run was made from, with size, format and sha256."""
        return [
            RawFile(
                name=s.name,
                size=s.size,
                format=s.format,
                sha256=s.sha256,
                key=s.store_key,
                original_path=s.original_path,
                modified=s.modified,
                ingested=s.ingested,
                ingested_by=s.ingested_by,
                problems=tuple(s.problems),
                _store=self._home.store,
            )
            for s in self._sources
        ]

    @cached_property
    def channels(self) -> Channels:
        """The run's arrays by key: TDMS ``group/channel``, an HDF5 path, a CSV column."""
        return Channels(self)

    def tree(self) -> Tree:
        """The structure as the source has it (one subtree per raw file if there are several)."""
        trees = [s.tree for s in self._sources]
        if len(trees) == 1:
            return Tree(trees[0])
        return Tree({"name": f"run {self.number}", "kind": "run", "children": trees})

    @property
    def data_bytes(self) -> int:
        """The size of the run's arrays, decoded."""
        return self._row.data_bytes

    def export(
        self, path: str | os.PathLike[str], format: str = "hdf5", *, force: bool = False
    ) -> Exported:
        """Write the run to ``path``: ``hdf5``, a file with the source's tree, attributes and
        raw values (NeXus classes kept where the source had them) and the calibrated signals
        as NXdata; ``csv``, a folder with a file per channel group and ``signals.csv``, in
        physical units. An existing ``path`` is refused unless ``force``.

        >>> import tempfile
        >>> run.export(tempfile.mkdtemp() + "/shot1255.h5").signals[:2]
        ('RF_Pfwd', 'RF_Pref')
        """
        return self._home.export(self, path, format, force=force)

    @property
    def numbered(self) -> str | None:
        """Where the run's number came from, as ingest recorded it: ``"from --run"``, ``"from
        NeXus entry1/entry_identifier"``, ``"from the file name"``, ``"the next free number"``
        (with why a number the file states was passed over); None for a run ingested before
        this was recorded. Kept in :attr:`metadata` as ``labledger:number``, so searchable.

        >>> la.runs[1234].numbered
        "from TDMS property 'shot'"
        """
        value = self.metadata.get(NUMBER_KEY)
        return value if isinstance(value, str) else None

    @property
    def config_version(self) -> int | None:
        """The configuration version the run was stamped with at ingest (None: ingested before
        the archive had a configuration, so the newest applies)."""
        return self._row.config_version

    def signal(
        self,
        name: str,
        *,
        calibration: str | None = None,
        time: TimeWindow | None = None,
        points: int | None = None,
    ) -> xarray.DataArray:
        """The physical signal ``name``, calibrated, over time in s: whichever port it was wired
        to for this run, under the calibration in force for it (or ``calibration="name@N"``);
        ``time=(t0, t1)`` reads only that window. The attributes say how it was resolved.
        ``points=2000``: a min/max decimation for plots, every peak and dip kept (through a
        server, decimated there: only those points travel).

        >>> run.number, run.signal("Langmuir_I").attrs["calibration"]
        (1255, 'langmuir_i@2')
        >>> run.signal("Langmuir_I", calibration="langmuir_i@1").attrs["calibration"]
        'langmuir_i@1'
        """
        return self._home.signal(self, name, calibration=calibration, time=time, points=points)

    @property
    def machine(self) -> Machine:
        """The testbed as configured for this run: components, properties, diagnostic models.

        >>> run.machine.langmuir_probe.density()
        <Quantity(3.159...e+17, '1 / meter ** 3')>
        """
        return self._home.machine(self)

    @property
    def flags(self) -> list[Flag]:
        """The data-quality flags in force on this run (whole or an interval of it), oldest
        first; asked of the catalog each time, as flags come and go.

        >>> [(f.subsystem, f.severity, f.reason) for f in la.runs[1234].flags]
        [('power', 'bad', 'outage')]
        """
        return self._home.flags(self)

    def product(self, step: Any, **params: Any) -> Any:
        """The current product of ``step`` with ``params`` for this run. Read inside another
        step, it is recorded as that step's input.

        >>> from labledger.sim.analysis import density
        >>> run.product(density).value
        <Quantity(3.134...e+17, '1 / meter ** 3')>
        """
        return self._home.product(self, step, params)

    def to_dict(self, *, full: bool = False) -> dict[str, Any]:
        """The run as JSON-ready data; ``full`` adds sources, channels and the tree."""
        data: dict[str, Any] = {
            "number": self.number,
            "id": self.id,
            "state": self.state,
            "started": self.started.isoformat(),
            "ended": self.ended.isoformat() if self.ended else None,
            "ingested": self.created.isoformat(),
            "channels": self._row.n_channels,
            "data_bytes": self.data_bytes,
            "sources": [s.name for s in self._sources],
            "config_version": self.config_version,
            "numbered": self.numbered,
            "complete": self.complete,
            "reason": self.reason,
            "structure": self._row.structure,
        }
        w = self._known_withdrawal()
        data["withdrawn"] = w.to_dict() if w else None
        if full:
            data["metadata"] = self.metadata
            data["sources"] = [s.to_dict() for s in self.sources]
            data["channels"] = [self.channels[k].to_dict() for k in self.channels]
            data["tree"] = self.tree().to_dict()
        return data


class Channels(Mapping[str, "Channel"]):
    """A run's channels by key. A path through a link (a NeXus NXdata hard link, a soft link)
    finds the channel it points at; an unknown key gets the close matches in its error."""

    def __init__(self, run: Run):
        self._run = run
        self._rows: dict[str, ChannelRecord] | None = None

    def _all(self) -> dict[str, ChannelRecord]:
        if self._rows is None:
            rows = self._run._home.catalog.channels(self._run.id)
            self._rows = {r.key: r for r in rows}
        return self._rows

    def prime(self, rows: list[ChannelRecord]) -> None:
        """Take the run's channel rows from a query made for many runs at once."""
        self._rows = {r.key: r for r in rows}

    def __getitem__(self, key: str) -> Channel:
        rows = self._all()
        row = rows.get(key) or rows.get(without_nul(key))  # a NUL is kept as "␀"
        if row is None:
            target = self._through_links(key)
            row = rows.get(target) if target else None
        if row is None:
            raise NotFound(self._missing(key))
        return Channel(self._run, row)

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and (
            key in self._all() or self._through_links(key) in self._all()
        )

    def __repr__(self) -> str:
        keys = list(self)
        shown = ", ".join(keys[:5]) + (", …" if len(keys) > 5 else "")
        return f"<Channels of run {self._run.number}: {len(keys)} ({shown})>"

    def _repr_html_(self) -> str:
        rows = [Channel(self._run, r).facts() for r in self._all().values()]
        title = f"run {self._run.number}: {len(rows)} channels"
        return html_table(rows, header=Channel.FACTS, title=title)

    @cached_property
    def _links(self) -> dict[str, dict[str, Any]]:
        links: dict[str, dict[str, Any]] = {}
        for source in self._run._sources:
            for node, path in Tree(source.tree).walk():
                if node["kind"] == "link":
                    links[path] = node
        return links

    def _through_links(self, key: str) -> str | None:
        """``key`` with every link along it replaced by its target, or None if none applies."""
        parts, hops = key.split("/"), 0
        i = 1
        while i <= len(parts):
            link = self._links.get("/".join(parts[:i]))
            if link is not None and link.get("link", "soft") in ("soft", "hard"):
                hops += 1
                if hops > 32:  # a cycle of soft links
                    return None
                parts = link["target"].split("/") + parts[i:]
                i = 1
                continue
            i += 1
        resolved = "/".join(parts)
        return resolved if resolved != key else None

    def _missing(self, key: str) -> str:
        run = self._run.number
        state = self._run.state
        if state not in ENDED:  # live: its arrays are stored when it ends
            return (
                f"run {run} is {state}: its arrays are stored once it ends; follow {key!r} "
                f"as it comes with run.follow({key!r}), or wait with run.wait('closed')"
            )
        link = self._links.get(key)
        if link is not None and link.get("link") == "external":
            return (
                f"run {run}: {key} is an external link to {link['file']}:/{link['target']}, "
                "a file that is not part of this run"
            )
        if link is not None and "reason" in link:  # a dataset whose values lie elsewhere
            files = ", ".join(link.get("files", []))
            return f"run {run}: {key} ({link['link']} in {files}) was not read: {link['reason']}"
        close = difflib.get_close_matches(key, list(self._all()), n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        return f"run {run} has no channel {key!r}{hint} (list them with `labledger show {run}`)"


class Channel:
    """One stored array of a run: slice it to read only the chunks you need.

    ``ch[10_000:20_000]`` is a NumPy array; ``ch.to_xarray()`` adds the time axis (or NeXus
    axes) and the attributes.
    """

    def __init__(self, run: Run, row: ChannelRecord):
        self.run = run
        self.key: str = row.key
        self.shape: tuple[int, ...] = tuple(row.shape)
        self.dtype: np.dtype = from_text(row.dtype)
        self.attrs: dict[str, Any] = row.attrs
        self.axes: list[Axis] = [Axis.from_dict(a) for a in row.axes]
        self._row = row

    FACTS = ("channel", "shape", "dtype", "unit")

    @property
    def format(self) -> str:
        """The raw format of the file the channel was read from (``tdms``, ``hdf5``, ...)."""
        return next(s.format for s in self.run._sources if s.id == self._row.source_id)

    def own_scaling(self) -> OwnScaling | None:
        """The scaling its raw format gives it (``(slope, intercept)`` or a callable), None
        if the format stores physical values (see :meth:`scaled`)."""
        if self.format == LIVE:  # a live stream's values are as its DAQ declared them
            return None
        return own_scaling(self.format, self.attrs)

    def __repr__(self) -> str:
        unit = f" in {self.scaled_unit}" if self.scaled_unit else ""
        return f"<Channel {self.key!r} of run {self.run.number}: {self.shape} {self.dtype}{unit}>"

    def facts(self) -> tuple[str, str, str, str | None]:
        """Its key, shape, dtype and unit (of :meth:`scaled`), as tables show them."""
        shape = "×".join(map(str, self.shape)) or "scalar"
        return self.key, shape, str(self.dtype), self.scaled_unit

    def _repr_html_(self) -> str:
        axes = [(a.name, a.unit, a.step, a.channel) for a in self.axes]
        attrs = list(self.attrs.items())
        return (
            html_table([self.facts()], header=self.FACTS, title=f"run {self.run.number}")
            + (html_table(axes, header=["axis", "unit", "step", "from channel"]) if axes else "")
            + html_table(attrs, header=["attribute", "value"])
        )

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError(f"{self.key} is a single value; read it with channel[()]")
        return self.shape[0]

    @cached_property
    def array(self) -> AnyArray:
        """The stored array itself (slicing the channel slices this)."""
        log = reads.current()
        if log is not None:  # a step is reading this channel: its provenance says so
            log.channel(self.run, self.key)
        return open_array(self.run._home.store, self._row.store_path)

    def __getitem__(self, selection: Any) -> Any:
        return self.array[selection]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        values = np.asarray(self.array[...])
        return values if dtype is None else values.astype(dtype)

    def read(self) -> Any:
        """All of it."""
        return self.array[...]

    def preview(self, rows: slice, points: int) -> tuple[np.ndarray, np.ndarray] | None:
        """A min/max decimation of ``rows`` (a slice of a 1-D channel) to at most ``points``
        samples, read from the channel's min/max pyramid: the indices kept and their raw values
        (as :func:`labledger.decimation.minmax` would keep them; the buckets' edges on the
        pyramid's cells, see :func:`labledger.store.pyramid.preview`). None when a plain read
        serves as well: a short window, or a channel with no pyramid (ingested before them).

        >>> channel = la.runs[1234].channels["PXI M6251/ai3"]
        >>> channel.preview(slice(None), 2000) is None   # 35,000 samples: read them
        True
        """
        if self.ndim != 1:
            return None
        start, stop, _ = rows.indices(self.shape[0])
        if stop - start <= points:
            return None
        log = reads.current()
        if log is not None:  # a step is reading this channel: its provenance says so
            log.channel(self.run, self.key)
        return preview(self.run._home.store, self._row.store_path, start, stop, points)

    def scaled(self, selection: Any = slice(None)) -> np.ndarray:
        """The channel's values (or ``selection`` of them, reading only those chunks) in the
        physical unit of its own scaling: a TDMS channel's NI/DAQmx scales, applied by npTDMS
        exactly as ``TdmsFile.read`` would, to the stored raw integers. The unit is
        ``scaled_unit``. No testbed description is needed (``run.signal`` adds calibrations)."""
        scaling = self.own_scaling()
        if scaling is None:
            raise NotFound(
                f"run {self.run.number}: channel {self.key!r} has no scaling of its own (no "
                "NI_Scale properties); read its raw values instead"
            )
        raw = np.asarray(self.array[selection])
        if isinstance(scaling, tuple):
            slope, intercept = scaling
            return raw * slope + intercept
        return scaling(raw, self._scalers(selection))

    @property
    def scaled_unit(self) -> str | None:
        """The unit of :meth:`scaled` as the DAQ wrote it (``unit_string``), if it did."""
        unit = self.attrs.get("unit_string") or self.attrs.get("NI_UnitDescription")
        return str(unit) if unit else None

    def _scalers(self, selection: Any) -> dict[int, np.ndarray] | None:
        """A DAQmx channel stored as one array per raw scaler (``.../scalerN``): all of them,
        since one scale can read several."""
        own = _scaler_of(self.key)
        if own is None:
            return None
        siblings = {k: s for k in self.run.channels if (s := _scaler_of(k)) and s[0] == own[0]}
        return {s[1]: np.asarray(self.run.channels[k][selection]) for k, s in siblings.items()}

    def to_xarray(
        self, selection: slice = slice(None), *, scaled: bool = False
    ) -> xarray.DataArray:
        """The channel (or ``selection`` of its first axis) as an ``xarray.DataArray`` with its
        coordinates: the time axis where the source gives one, NeXus axes, else indices.
        ``scaled=True`` gives :meth:`scaled` values, with their unit in ``attrs["units"]``."""
        import xarray

        if scaled:
            values = self.scaled(selection if self.shape else ())
        else:
            values = np.asarray(self.array[selection] if self.shape else self.array[()])
        coords: dict[str, Any] = {}
        dims = []
        for dim in range(values.ndim):
            axis = self.axes[dim] if dim < len(self.axes) else Axis(name=f"dim_{dim}")
            name = axis.name if axis.name not in dims else f"{axis.name}_{dim}"
            dims.append(name)
            indices = np.arange(self.shape[dim])
            if dim == 0:
                indices = indices[selection]
            coord = self._coordinate(axis, indices)
            if coord is not None:
                coords[name] = coord
        attrs = dict(self.attrs)
        attrs.update(
            {
                "labledger_run": self.run.number,
                "labledger_run_id": self.run.id,
                "labledger_channel": self.key,
            }
        )
        if scaled and self.scaled_unit:
            attrs["units"] = self.scaled_unit
        return xarray.DataArray(values, dims=dims, coords=coords, name=self.key, attrs=attrs)

    def _coordinate(self, axis: Axis, indices: np.ndarray) -> Any:
        import xarray

        attrs = {k: v for k, v in (("units", axis.unit), ("origin", axis.origin)) if v}
        if axis.step is not None:
            values = (axis.start or 0.0) + indices * axis.step
            return xarray.Variable(axis.name, values, attrs)
        if axis.channel is not None and axis.channel in self.run.channels:
            other = self.run.channels[axis.channel]
            if other.ndim == 1 and other.shape[0] >= (indices.max(initial=-1) + 1):
                values = other[int(indices.min(initial=0)) : int(indices.max(initial=-1)) + 1]
                values = np.asarray(values)[indices - indices.min(initial=0)]
                return xarray.Variable(axis.name, values, attrs)
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "shape": list(self.shape),
            "dtype": self._row.dtype,
            "attrs": self.attrs,
            "axes": [a.to_dict() for a in self.axes],
        }


@dataclass(frozen=True)
class Piece:
    """A block of a live signal as it came (:meth:`Run.follow`): ``values`` (calibrated) at
    ``time`` (s from the run's start: samples ``first``, ``first + 1``... over ``rate``), in
    ``unit``; ``cursor`` resumes after it (``run.follow(name, cursor=piece.cursor)``). The
    same from a local archive and through a server.

    >>> from labledger.live import Cursor
    >>> at = np.array([0.0, 0.5])
    >>> p = Piece("I", "ai3", 0, np.ones(2), at, "A", None, Cursor(7, {"ai3": 1}), 0, 2.0)
    >>> p.to_xarray().attrs
    {'units': 'A', 'channel': 'ai3', 'block': 0}
    """

    signal: str
    channel: str
    seq: int
    values: np.ndarray
    time: np.ndarray
    unit: str
    calibration: str | None
    cursor: Cursor
    first: int  # the index of its first sample from the run's start
    rate: float  # samples a second

    def to_xarray(self) -> xarray.DataArray:
        attrs: dict[str, Any] = {"units": self.unit, "channel": self.channel, "block": self.seq}
        if self.calibration:
            attrs["calibration"] = self.calibration
        return signal_array(self.values, self.time, self.signal, attrs)


def _scaler_of(key: str) -> tuple[str, int] | None:
    """``("group/channel", N)`` for the key of a DAQmx channel's raw scaler N (as the TDMS
    reader names a channel stored as several arrays), else None."""
    parent, _, last = key.rpartition("/")
    number = last.removeprefix("scaler")
    return (parent, int(number)) if parent and number != last and number.isdigit() else None


class Tree:
    """A run's structure tree: groups, channels and links with their attributes.

    ``print(tree)`` draws it; ``tree["entry1/instrument"]`` is a subtree.
    """

    def __init__(self, node: dict[str, Any]):
        self.node = node

    @property
    def name(self) -> str:
        return self.node["name"]

    @property
    def kind(self) -> str:
        return self.node["kind"]

    @property
    def attrs(self) -> dict[str, Any]:
        return self.node.get("attrs", {})

    @property
    def children(self) -> list[Tree]:
        return [Tree(c) for c in self.node.get("children", [])]

    def __getitem__(self, path: str) -> Tree:
        node = self.node
        for part in [p for p in path.split("/") if p]:
            found = [c for c in node.get("children", []) if c["name"] == part]
            if not found:
                raise NotFound(f"no {part!r} under {node['name']!r} in the tree")
            node = found[0]
        return Tree(node)

    def walk(self) -> Iterator[tuple[dict[str, Any], str]]:
        """Every node below the root with its path from the root."""
        return walk_tree(self.node)

    def to_dict(self) -> dict[str, Any]:
        return self.node

    def __str__(self) -> str:
        lines = [_label(self.node)]

        def draw(node: dict[str, Any], indent: str) -> None:
            children = node.get("children", [])
            for i, child in enumerate(children):
                last = i == len(children) - 1
                lines.append(f"{indent}{'└── ' if last else '├── '}{_label(child)}")
                draw(child, indent + ("    " if last else "│   "))

        draw(self.node, "")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<Tree {self.name!r}: {sum(1 for _ in self.walk())} nodes>"


def _label(node: dict[str, Any]) -> str:
    name, kind = node["name"], node["kind"]
    nx = single(node.get("attrs", {}).get("NX_class"))
    if kind == "channel":
        shape = "×".join(map(str, node.get("shape", []))) or "scalar"
        return f"{name}  [{shape} {node.get('dtype', '')}]"
    if kind == "link" and "reason" in node:  # values in other files: external, virtual
        files = ", ".join(node.get("files", [])) + (" …" if node.get("files_total") else "")
        return f"{name} → {files}  ({node['link']}, not read: {node['reason']})"
    if kind == "link":
        where = f"{node['file']}:/" if node.get("file") else "/"
        return f"{name} → {where}{node['target']}  ({node.get('link', 'soft')} link)"
    if kind == "dataset":
        return f"{name}  (not ingested)"
    attrs = node.get("attrs", {})
    if kind == "file" and "csv_separator" in attrs:  # how the text was read, to check by eye
        read = attrs["csv_separator"], attrs.get("csv_decimal_mark", ".")
        return f"{name}/  (separator {read[0]!r}, decimal mark {read[1]!r})"
    return f"{name}/" + (f"  ({nx})" if nx else "")


class Runs:
    """An archive's runs: ``runs[-1]`` the newest closed run, ``runs[-2]`` the one before,
    ``runs[1234]`` by number, ``runs["<id>"]`` by id, ``runs[1200:1300]`` those numbers;
    ``len(runs)``, ``for run in runs`` (by number), :meth:`search` and :meth:`withdrawn`.

    A withdrawn run is left out of all of them but ``runs[1234]`` and ``runs["<id>"]``, which
    read it as any run (``run.withdrawn`` says why it was withdrawn)."""

    def __init__(self, home: RunHome):
        self.home = home  # what each run is given

    @property
    def _catalog(self) -> RunCatalog:
        return self.home.catalog

    def __getitem__(self, key: int | str | slice) -> Any:
        if isinstance(key, slice):
            if key.start is None or key.stop is None or key.start < 0 or key.stop < 0:
                raise IndexError("slice runs by number, both ends given: runs[1200:1300]")
            numbers = range(key.start, key.stop, key.step or 1)
            rows = self._catalog.by_numbers(numbers)
            withdrawn = Withdrawals(self._catalog).active([r.id for r in rows])
            return [Run(self.home, r, listed=True) for r in rows if r.id not in withdrawn]
        if isinstance(key, str):
            row = self._catalog.by_id(key)
            if row is None:
                raise NotFound(f"no run has the id {key!r}")
            return Run(self.home, row)
        if isinstance(key, bool) or not isinstance(key, (int, np.integer)):
            raise TypeError(f"runs are indexed by number or id, not {type(key).__name__}")
        key = int(key)
        if abs(key) > MAX_RUN_NUMBER:
            raise NotFound(f"run {key} does not exist: run numbers go up to {MAX_RUN_NUMBER}")
        if key < 0:
            row = self._catalog.newest(offset=-key - 1)
            if row is None:
                count = len(self)
                raise NotFound(
                    "the archive has no runs yet; add some with `labledger ingest FILE`"
                    if count == 0
                    else f"runs[{key}]: the archive has only {count} closed runs"
                )
            return Run(self.home, row, listed=True)
        row = self._catalog.by_number(key)
        if row is None:
            newest = self._catalog.newest()
            hint = f"; the newest is run {newest.number}" if newest else "; the archive is empty"
            raise NotFound(f"run {key} does not exist{hint} (list them with `labledger runs`)")
        return Run(self.home, row)

    def __len__(self) -> int:
        return self._catalog.count()

    def live(self, *, timeout: float | None = None) -> Run:
        """The live run (the newest not yet saved whole), or the next one to be prepared,
        waited for up to ``timeout`` s (None: for ever); ``runs[-1]`` stays the newest closed.

        >>> la.runs.live(timeout=0)
        Traceback (most recent call last):
        ...
        labledger.errors.NotFound: no run is live: ...
        """
        deadline = None if timeout is None else clock.monotonic() + timeout
        while True:
            found = self._catalog.open_runs()
            if found:
                return Run(self.home, found[0])
            if deadline is not None and clock.monotonic() >= deadline:
                raise NotFound(
                    "no run is live: a DAQ starts one with la.acquisition(...) (or "
                    "`labledger demo --live`), and `labledger saver` keeps it"
                )
            clock.sleep(_WAIT)

    def last(self, n: int) -> list[Run]:
        """The ``n`` runs with the highest numbers, in order."""
        return [Run(self.home, r, listed=True) for r in self._catalog.last(n)]

    def __iter__(self) -> Iterator[Run]:
        return (Run(self.home, r, listed=True) for r in self._catalog.iter_runs())

    def __contains__(self, number: object) -> bool:
        return isinstance(number, int) and self._catalog.by_number(number) is not None

    def __repr__(self) -> str:
        return f"<Runs: {len(self)} in {self.home}>"

    def _repr_html_(self) -> str:
        count, shown = len(self), self.last(HTML_ROWS)
        rows = [
            (
                r.number,
                f"{r.started:%Y-%m-%d %H:%M:%S}",
                r.state,
                r._row.n_channels,
                human_size(r.data_bytes),
            )
            for r in shown
        ]
        header = ["run", "started (UTC)", "state", "channels", "size"]
        title = f"{count} runs" + (f", the last {len(shown)}" if count > len(shown) else "")
        return html_table(rows, header=header, title=title)

    def search(
        self,
        *,
        since: str | datetime | None = None,
        until: str | datetime | None = None,
        source: str | None = None,
        state: str | None = "closed",
        where: dict[str, Any] | None = None,
        limit: int | None = None,
        quality: str | None = None,
        **metadata: Any,
    ) -> list[Run]:
        """Runs matching every condition, by number.

        ``since``/``until`` bound the start time (ISO dates or datetimes, UTC unless they say);
        ``source`` is a raw file's name or sha256; keyword arguments match metadata keys
        (``gas="Ar"``), ``where`` those whose names are not Python identifiers or are taken
        (``{"entry1/title": "scan"}``, ``{"quality": "A"}``). A list of values matches any of
        them. ``quality="good"`` leaves out runs that an active flag of severity bad covers
        whole (see :attr:`Archive.flags`); ``quality="bad"`` keeps only those. Withdrawn
        runs are left out (:meth:`withdrawn` lists them).

        >>> [r.number for r in la.runs.search(gas="Ar", since="2026-11-01")]
        [1234, 1235, 1245, 1255]
        >>> [r.number for r in la.runs.search(gas="Ar", since="2026-11-01", quality="good")]
        [1245, 1255]
        """
        conditions = {**(where or {}), **metadata}
        rows = self._catalog.search(
            since=parse_when(since, "since"),
            until=parse_when(until, "until"),
            source=source,
            state=state,
            where=conditions,
            limit=limit,
            quality=quality,
        )
        return [Run(self.home, r, listed=True) for r in rows]

    def withdrawn(self) -> list[Run]:
        """The runs withdrawn now, by number (``run.withdrawn`` says why); the history of
        withdrawals and restorations is ``la.withdrawals.list()``.

        >>> _ = la.withdraw(1234, reason="a note, not a shot")
        >>> [(r.number, r.withdrawn.reason) for r in la.runs.withdrawn()]
        [(1234, 'a note, not a shot')]
        """
        rows = self._catalog.search(state=None, withdrawn=True)
        found = [Run(self.home, r) for r in rows]
        known = Withdrawals(self._catalog).active([r.id for r in rows])  # one query for all
        for run in found:
            run._withdrawal = known.get(run.id)
        return found
