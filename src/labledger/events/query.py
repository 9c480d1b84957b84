"""Processing levels and event tables: one row per physics event, keyed, linked to its parents.

A detector's analysis runs in levels: Level 2 keeps the events that pass a first filter, Level 3
refines them, Level 4 is what an analysis uses. A step may emit an event table at a level with
:class:`Events`; each row is keyed by ``(run, event, sub_event, stream)`` and, when the level has
a parent level, names the event it came from there by ``(parent_event, parent_sub_event,
parent_stream)`` in the same run. Tables are stored as Parquet, one file per run and product:

    events/level=4/run=1234/<product id>.parquet

so any Parquet reader (DuckDB, pandas, Spark) can open them without labledger, and a query of
some runs reads only their files. :class:`EventQuery` answers ``la.events(level=4)`` and
``.with_parent(level=2)`` with DuckDB, which reads the files in place, in parallel: it reads the
events, hash-joins only their parent keys to the ancestors' files a group of runs at a time, and
puts the ancestors' columns beside the events. ``docs/events.md`` has the layout, the query and
the measurements (a million Level-4 events with their parents among ten million Level-2 ones in
0.4 s on two cores, about five times faster than pandas).

This module stands alone: the lineage framework hands it the store and a way to list a level's
current files, and records what it writes in the catalog.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from labledger.errors import InvalidArgument, NotFound, first_line
from labledger.store import ObjectStore

if TYPE_CHECKING:
    import duckdb
    import pandas

KEY = ("run", "event", "sub_event", "stream")
PARENT_KEY = ("parent_event", "parent_sub_event", "parent_stream")
KEY_TYPES: dict[str, pa.DataType] = {
    "run": pa.int64(),
    "event": pa.int64(),
    "sub_event": pa.int32(),
    "stream": pa.string(),
    "parent_event": pa.int64(),
    "parent_sub_event": pa.int32(),
    "parent_stream": pa.string(),
}
MAX_LEVEL = 9
# Joined ancestor columns are named l2_energy etc.; a data column of that shape would collide.
_ANCESTOR_PREFIX = re.compile(r"^l[0-9]_", re.IGNORECASE)
# Rows per Parquet row group: DuckDB and pyarrow read row groups in parallel, so a run's file of
# 100,000 events is a few of them rather than one; fewer than ~64k costs in per-group overhead.
_ROW_GROUP = 65_536
# Parent keys per hash table when a query joins events to their ancestors, a group of runs at
# a time (see _ancestors).
_JOIN_GROUP = 100_000


class Events:
    """What a step returns to emit an event table at a processing level.

    ``table`` is a pandas DataFrame, a pyarrow Table or a dict of column -> array-like. Its key
    columns are ``event`` (integers, required), ``sub_event`` (integers, default 0) and
    ``stream`` (text; or give one name for every row with ``stream=``). With ``parent_level``,
    each row names its parent at that level by ``parent_event`` (required), ``parent_sub_event``
    (default 0) and ``parent_stream`` (default: the row's own stream); the parent is in the same
    run. A ``run`` column may be given but must hold the run being processed. Every other column
    is the event's data.

    >>> ev = Events({"event": [1, 2], "energy": [3.5, 7.0]}, level=2, stream="hits")
    >>> t = ev.table(run=1234)
    >>> t.column_names, len(ev)
    (['run', 'event', 'sub_event', 'stream', 'energy'], 2)
    >>> l4 = Events({"event": [2], "parent_event": [2], "score": [0.9]},
    ...             level=4, parent_level=2, stream="hits")
    >>> l4.table(1234).column_names[4:]
    ['parent_event', 'parent_sub_event', 'parent_stream', 'score']
    """

    level: int
    parent_level: int | None

    def __init__(
        self,
        table: Any,
        *,
        level: int,
        parent_level: int | None = None,
        stream: str | None = None,
    ) -> None:
        self.level = _check_level(level, "level")
        if parent_level is not None:
            parent_level = _check_level(parent_level, "parent_level")
            if parent_level >= level:
                raise InvalidArgument(
                    f"parent_level={parent_level} is not below level={level}: events descend "
                    "from a lower level (a Level-4 event from a Level-2 one, say)"
                )
        self.parent_level = parent_level
        if stream is not None and (not isinstance(stream, str) or not stream):
            raise InvalidArgument(f"stream={stream!r}: give a stream name as non-empty text")
        source = _as_arrow(table)
        _check_names(source.column_names, has_parent=parent_level is not None)
        names = source.column_names
        self._run = _key_column(source, "run", pa.int64()) if "run" in names else None
        columns: dict[str, pa.ChunkedArray] = {}
        columns["event"] = _required_key(source, "event", pa.int64())
        columns["sub_event"] = _optional_key(source, "sub_event", pa.int32(), default=0)
        columns["stream"] = _stream(source, "stream", stream)
        if parent_level is not None:
            columns["parent_event"] = _required_key(source, "parent_event", pa.int64())
            columns["parent_sub_event"] = _optional_key(
                source, "parent_sub_event", pa.int32(), default=0
            )
            columns["parent_stream"] = (
                _stream(source, "parent_stream", None)
                if "parent_stream" in names
                else columns["stream"]
            )
        for name in names:
            if name not in KEY and name not in PARENT_KEY:
                columns[name] = source.column(name)
        self._columns = columns

    def __len__(self) -> int:
        return len(self._columns["event"])

    def __repr__(self) -> str:
        parent = "" if self.parent_level is None else f", parent_level={self.parent_level}"
        return f"Events({len(self)} rows, level={self.level}{parent})"

    def table(self, run: int) -> pa.Table:
        """The normalised table of these events in ``run``: ``run`` (int64), ``event`` (int64),
        ``sub_event`` (int32), ``stream`` (string), the parent key if any, then the data
        columns; ``level`` and ``parent_level`` in the schema metadata. Refuses a key that
        appears twice, naming the first repeat.

        >>> Events({"event": [5, 5], "stream": ["a", "b"]}, level=1).table(7).num_rows
        2
        """
        if not _is_int(run) or run < 0:
            raise InvalidArgument(f"run={run!r}: a run number is a non-negative integer")
        where = f"level-{self.level} events of run {run}"
        n = len(self)
        if self._run is not None:
            differs = pc.not_equal(self._run, pa.scalar(run, pa.int64()))
            if pc.any(differs).as_py():
                row = _first_true(differs)
                raise InvalidArgument(
                    f"{where}: row {row} has run {self._run[row].as_py()}; a step's events "
                    "belong to the run it processes (drop the 'run' column or fix it)"
                )
        order, repeat = _key_order(
            self._columns["event"], self._columns["sub_event"], self._columns["stream"]
        )
        if repeat is not None:
            first, again = repeat
            raise InvalidArgument(
                f"{where}: {_key_text(run, self._columns, again)} appears more than once (rows "
                f"{first} and {again}); (event, sub_event, stream) must be unique in a run"
            )
        columns = list(self._columns.values())
        if order is not None:
            # stored in key order: a query's rows then come sorted without a sort, and each row
            # group's min/max of event lets a reader skip the row groups a filter excludes
            columns = [c.take(order) for c in columns]
        names = ["run", *self._columns]
        arrays = [_full(n, run, pa.int64()), *columns]
        fields = [
            pa.field(name, KEY_TYPES.get(name, arr.type), nullable=name not in KEY_TYPES)
            for name, arr in zip(names, arrays)
        ]
        metadata = {b"level": str(self.level).encode()}
        if self.parent_level is not None:
            metadata[b"parent_level"] = str(self.parent_level).encode()
        return pa.Table.from_arrays(arrays, schema=pa.schema(fields, metadata=metadata))


@dataclass(frozen=True)
class EventFile:
    """One stored event table: the events of one product at one level in one run."""

    path: str  # the store key, e.g. "events/level=2/run=1234/<id>.parquet"
    run: int
    level: int
    parent_level: int | None
    product_id: str


def event_key(level: int, run: int, product_id: str) -> str:
    """The store key of a product's events at ``level`` in ``run``.

    >>> event_key(4, 1234, "01J")
    'events/level=4/run=1234/01J.parquet'
    """
    return f"events/level={level}/run={run}/{product_id}.parquet"


def write_events(store: ObjectStore, key: str, table: pa.Table) -> dict[str, Any]:
    """Write a table from :meth:`Events.table` at ``key`` as Parquet (zstd); a small summary.

    >>> import tempfile
    >>> store = ObjectStore(tempfile.mkdtemp())
    >>> t = Events({"event": [1, 2]}, level=2, stream="hits").table(1234)
    >>> summary = write_events(store, event_key(2, 1234, "p1"), t)
    >>> summary["rows"], summary["streams"], summary["parent_level"]
    (2, ['hits'], None)
    """
    _level, parent_level = _levels_of(table, f"write_events({key!r})")
    # measurements are floats whose mantissas zstd cannot shrink; split into byte planes
    # (sign and exponent bytes together) they compress by a quarter more and decode a third
    # faster. Event numbers are stored sorted: deltas are smaller and quicker to decode than a
    # dictionary. Everything else (run, streams, counts) repeats: dictionaries.
    # (bench/events_join.py, docs/events.md)
    floats = (pa.float32(), pa.float64())
    encoding = {f.name: "BYTE_STREAM_SPLIT" for f in table.schema if f.type in floats}
    encoding.update(event="DELTA_BINARY_PACKED", sub_event="DELTA_BINARY_PACKED")
    with store.open_write(key) as f:
        pq.write_table(
            table,
            f,
            compression="zstd",
            row_group_size=_ROW_GROUP,
            use_dictionary=[name for name in table.column_names if name not in encoding],
            column_encoding=encoding,
            write_statistics=True,
        )
    return {
        "rows": table.num_rows,
        "columns": table.column_names,
        "parent_level": parent_level,
        "streams": sorted(pc.unique(table.column("stream")).to_pylist()),
    }


def read_events(store: ObjectStore, key: str) -> pa.Table:
    """One stored event table, whole, with its ``level``/``parent_level`` metadata.

    >>> import tempfile
    >>> store = ObjectStore(tempfile.mkdtemp())
    >>> _ = write_events(store, "e.parquet", Events({"event": [1]}, level=2, stream="s").table(9))
    >>> read_events(store, "e.parquet").schema.metadata[b"level"]
    b'2'
    """
    try:
        if store.is_local:
            return pq.read_table(store.path(key))
        with store.open_read(key) as f:
            return pq.read_table(f)
    except FileNotFoundError:
        raise NotFound(f"no event table at {key!r} in {store.url}") from None


def check_parents(table: pa.Table, parents: Sequence[EventFile], store: ObjectStore) -> None:
    """Refuse events whose parent key is not among the events of ``parents``.

    Every ``(run, parent_event, parent_sub_event, parent_stream)`` of ``table`` must be the
    ``(run, event, sub_event, stream)`` of an event in the parent files. The error names the
    first missing parent in table order and how many are missing. DuckDB does it as an
    anti-join over the parent files, reading only their key columns.

    >>> import tempfile
    >>> store = ObjectStore(tempfile.mkdtemp())
    >>> key = event_key(2, 1, "p2")
    >>> _ = write_events(store, key, Events({"event": [1, 2]}, level=2, stream="s").table(1))
    >>> l4 = Events({"event": [9], "parent_event": [3]}, level=4, parent_level=2, stream="s")
    >>> check_parents(l4.table(1), [EventFile(key, 1, 2, None, "p2")], store)
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    labledger.errors.InvalidArgument: level-4 events of run 1: parent (run 1, event 3, ...
    """
    level, parent_level = _levels_of(table, "check_parents")
    runs = sorted(set(pc.unique(table.column("run")).to_pylist()))
    where = f"level-{level} events of {_runs_text(runs)}"
    if parent_level is None:
        raise InvalidArgument(f"{where} declare no parent level; there are no parents to check")
    if table.num_rows == 0:
        return
    if not parents:
        raise InvalidArgument(
            f"{where} name parents at level {parent_level}, but there are no level-"
            f"{parent_level} events of {_runs_text(runs)}; compute level {parent_level} first"
        )
    wrong = sorted({p.level for p in parents} - {parent_level})
    if wrong:
        raise InvalidArgument(
            f"{where} descend from level {parent_level}, but the parent files given hold "
            f"level {', '.join(map(str, wrong))}"
        )
    children = table.select(["run", *PARENT_KEY]).append_column(
        "row", pa.array(np.arange(table.num_rows, dtype=np.int64))
    )
    con = _connect(store)
    try:
        con.register("children", children)
        found = con.execute(
            f"""
            SELECT c.row, c.run, c.parent_event, c.parent_sub_event, c.parent_stream,
                   count(*) OVER () AS missing
            FROM children AS c
            ANTI JOIN {_scan(store, [p.path for p in parents])} AS p
              ON p.run = c.run AND p.event = c.parent_event
             AND p.sub_event = c.parent_sub_event AND p.stream = c.parent_stream
            ORDER BY c.row
            LIMIT 1
            """
        ).fetchall()  # DuckDB 2 keeps a result open until it is fetched to the end
    finally:
        _close(con)
    if found:
        _row, run, event, sub_event, stream, missing = found[0]
        parent_runs = sorted({p.run for p in parents})
        raise InvalidArgument(
            f"{where}: parent (run {run}, event {event}, sub-event {sub_event}, stream "
            f"{stream!r}) is not among the level-{parent_level} events of "
            f"{_runs_text(parent_runs)} ({missing} of {table.num_rows} parents missing); check "
            f"the step's parent_event/parent_sub_event/parent_stream, or that level "
            f"{parent_level} of {_runs_text(parent_runs)} is the one meant"
        )


class EventQuery:
    """``la.events(level=4)``: the current events of a level; ``.with_parent(level=2)`` joins
    each to its ancestor at level 2, following the declared parent levels (4 -> 3 -> 2).

    ``files(level)`` lists the current event files of a level (the catalog knows which);
    ``runs`` keeps the events of those runs, ``stream`` those of one stream. The joined columns
    of an ancestor are all its columns but ``run``, prefixed ``l2_`` (``l2_event``,
    ``l2_energy``...). Every event of the level appears once, as in a left join: an event
    whose parent is not among the current events of its level (recomputed since, say) has
    nulls there. Rows come sorted by run, event, sub-event and stream.

    >>> import tempfile
    >>> store = ObjectStore(tempfile.mkdtemp())
    >>> l2 = Events({"event": [1, 2], "energy": [3.5, 7.0]}, level=2, stream="s")
    >>> l4 = Events({"event": [2], "parent_event": [2]}, level=4, parent_level=2, stream="s")
    >>> stored = {}
    >>> for ev in (l2, l4):
    ...     key = event_key(ev.level, 1, f"p{ev.level}")
    ...     _ = write_events(store, key, ev.table(1))
    ...     stored[ev.level] = [EventFile(key, 1, ev.level, ev.parent_level, f"p{ev.level}")]
    >>> q = EventQuery(store, lambda level: stored.get(level, []), level=4).with_parent(level=2)
    >>> q.to_arrow().select(["event", "l2_event", "l2_energy"]).to_pylist()
    [{'event': 2, 'l2_event': 2, 'l2_energy': 7.0}]
    """

    def __init__(
        self,
        store: ObjectStore,
        files: Callable[[int], list[EventFile]],
        level: int,
        runs: Sequence[int] | None = None,
        stream: str | None = None,
    ) -> None:
        self.store = store
        self._files = files
        self.level = _check_level(level, "level")
        self.runs = None if runs is None else _check_runs(runs)
        if stream is not None and (not isinstance(stream, str) or not stream):
            raise InvalidArgument(f"stream={stream!r}: give a stream name as non-empty text")
        self.stream = stream
        self.ancestors: tuple[int, ...] = ()  # the levels whose columns are joined, highest first

    def __repr__(self) -> str:
        parts = [f"level={self.level}"]
        if self.ancestors:
            parts.append(f"with_parent={list(self.ancestors)}")
        if self.runs is not None:
            parts.append(f"runs={_runs_text(list(self.runs))!r}")
        if self.stream is not None:
            parts.append(f"stream={self.stream!r}")
        return f"EventQuery({', '.join(parts)})"

    def with_parent(self, level: int) -> EventQuery:
        """The same events, each joined to its ancestor at ``level`` (columns ``l{level}_*``).

        Refuses a level that is not on the chain of declared parent levels, or a chain whose
        files disagree. Calling it again adds another ancestor (``.with_parent(3)
        .with_parent(2)`` gives both ``l3_*`` and ``l2_*``).
        """
        level = _check_level(level, "level")
        if level >= self.level:
            raise InvalidArgument(
                f"with_parent(level={level}): an ancestor of level-{self.level} events is at a "
                f"lower level (0..{self.level - 1})"
            )
        query = EventQuery(self.store, self._files, self.level, self.runs, self.stream)
        query.ancestors = tuple(sorted({*self.ancestors, level}, reverse=True))
        query._plan()  # refuse now, not at the first read
        return query

    def sql(self) -> str:
        """The DuckDB SQL of this query, to extend or to run in a DuckDB shell.

        :meth:`to_arrow` gives exactly its rows, in its order, but runs it in two steps: it
        reads the events, then joins only their parent keys to the ancestors and puts the
        ancestors' columns beside the events, so that the events' own columns never go
        through the join and no sort is needed (docs/events.md has the measurements).
        """
        con = _connect(self.store)
        try:
            return self._sql(con)
        finally:
            _close(con)

    def to_arrow(self) -> pa.Table:
        """The events (and their ancestors' columns) as a pyarrow Table, sorted by run, event,
        sub-event and stream."""
        con = _connect(self.store)
        try:
            layout = self._layout(con)
            if layout is None:
                return _arrow(con.sql(_empty_sql()))
            events = _arrow(con.sql(f"SELECT * FROM {layout.scan} AS e{self._where(layout)}"))
            events = _in_key_order(events)
            if not layout.joins:
                return events
            return _beside(events, _ancestors(con, self.store, events, layout.joins), layout.joins)
        finally:
            _close(con)

    def to_pandas(self) -> pandas.DataFrame:
        """The events (and their ancestors' columns) as a pandas DataFrame."""
        return self.to_arrow().to_pandas()

    def count(self) -> int:
        """How many rows :meth:`to_arrow` would give, without fetching them."""
        con = _connect(self.store)
        try:
            sql = f"SELECT count(*) FROM ({self._sql(con, order=False)})"
            return int(con.execute(sql).fetchall()[0][0])
        finally:
            _close(con)

    def __len__(self) -> int:
        return self.count()

    # -- planning --------------------------------------------------------------------------------

    def _select(self, level: int, runs: set[int] | None) -> list[EventFile]:
        files = [f for f in self._files(level) if f.level == level]
        return files if runs is None else [f for f in files if f.run in runs]

    def _plan(self) -> list[tuple[int, list[EventFile], list[EventFile]]]:
        """Per level, from the queried one down to the lowest ancestor asked for: the files the
        query reads and, when that selection is empty, any one file of the level (so an empty
        answer still has the right columns). Refuses a chain that does not reach the ancestor."""
        wanted = None if self.runs is None else set(self.runs)
        everything = self._select(self.level, None)
        chosen = self._select(self.level, wanted)
        plan = [(self.level, chosen, everything[:1] if not chosen else [])]
        if not self.ancestors:
            return plan
        if not everything:
            raise NotFound(
                f"no level-{self.level} events are recorded, so there is no level "
                f"{self.ancestors[-1]} to follow them to; compute level {self.level} first"
            )
        runs = {f.run for f in chosen}
        level, seen, path = self.level, chosen or everything, [self.level]
        target = self.ancestors[-1]
        while level > target:
            declared: dict[int | None, set[int]] = {}
            for f in seen:
                declared.setdefault(f.parent_level, set()).add(f.run)
            if len(declared) > 1:
                said = "; ".join(
                    f"{_runs_text(sorted(r))} declare "
                    + ("no parent level" if p is None else f"level {p}")
                    for p, r in sorted(declared.items(), key=lambda i: (i[0] is None, i[0] or 0))
                )
                raise InvalidArgument(
                    f"level-{level} events disagree on their parent level ({said}); query "
                    "the runs of one kind at a time with runs=..."
                )
            parent = next(iter(declared))
            if parent is None or parent < target:
                chain = " -> ".join(map(str, path))
                ends = "no parent level" if parent is None else f"level {parent}"
                raise InvalidArgument(
                    f"level {target} is not an ancestor of level-{self.level} events: they "
                    f"descend {chain}, then level-{level} events from {ends}; with_parent takes "
                    f"one of {', '.join(map(str, path[1:])) or 'no level'}"
                )
            everything = self._select(parent, None)
            chosen = self._select(parent, runs)
            if not everything:
                raise NotFound(
                    f"level-{level} events descend from level {parent}, but no level-{parent} "
                    f"events are recorded; with_parent(level={target}) cannot follow them"
                )
            plan.append((parent, chosen, everything[:1] if not chosen else []))
            level, seen = parent, chosen or everything
            path.append(parent)
        missing = [a for a in self.ancestors if a not in path]
        if missing:
            raise InvalidArgument(
                f"level {missing[0]} is not an ancestor of level-{self.level} events: they "
                f"descend {' -> '.join(map(str, path))}; with_parent takes one of "
                f"{', '.join(map(str, path[1:]))}"
            )
        return plan

    def _layout(self, con: duckdb.DuckDBPyConnection) -> _Layout | None:
        """What the query reads: None when nothing at all is recorded at the level."""
        plan = self._plan()
        _level, chosen, stand_in = plan[0]
        if not chosen and not stand_in:
            return None
        joins = []
        for ancestor, found, spare in plan[1:]:
            files = sorted(found or spare, key=_by_run)
            scan = _scan(self.store, [f.path for f in files])
            wanted = ancestor in self.ancestors
            columns = [c for c in _columns(con, scan) if c != "run"] if wanted else []
            joins.append(_Join(ancestor, files, not found, columns))
        files = sorted(chosen or stand_in, key=_by_run)
        return _Layout(_scan(self.store, [f.path for f in files]), not chosen, joins)

    def _where(self, layout: _Layout) -> str:
        where = []
        if self.stream is not None:
            where.append(f"e.stream = {_literal(self.stream)}")
        if layout.empty:
            where.append("false")  # a stand-in file only lends its columns
        return "\nWHERE " + " AND ".join(where) if where else ""

    def _sql(self, con: duckdb.DuckDBPyConnection, order: bool = True) -> str:
        """The whole query as one statement."""
        layout = self._layout(con)
        if layout is None:
            return _empty_sql()
        select = ["e.*", *(c for join in layout.joins for c in join.select())]
        lines = [f"FROM {layout.scan} AS e"]
        below = "e"
        for join in layout.joins:
            scan = _scan(self.store, [f.path for f in join.files])
            lines.append(f"LEFT JOIN {scan} AS {join.alias}\n  ON {join.on(below)}")
            below = join.alias
        sql = "SELECT " + ",\n       ".join(select) + "\n" + "\n".join(lines)
        sql += self._where(layout)
        if order:
            sql += "\nORDER BY e.run, e.event, e.sub_event, e.stream"
        return sql


@dataclass(frozen=True)
class _Join:
    """One ancestor level on the way down: its files and the columns the query brings."""

    level: int
    files: list[EventFile]  # by run; a stand-in when none is among the runs asked
    empty: bool  # the files are a stand-in that only lends its columns
    columns: list[str]  # without run; none for a level the query only walks through

    @property
    def alias(self) -> str:
        return f"l{self.level}"

    def on(self, below: str, empty: bool = False) -> str:
        a = self.alias
        return (
            f"{a}.run = {below}.run AND {a}.event = {below}.parent_event"
            f" AND {a}.sub_event = {below}.parent_sub_event"
            f" AND {a}.stream = {below}.parent_stream"
            + (" AND false" if self.empty or empty else "")
        )

    def scan(self, store: ObjectStore, runs: set[int] | None = None) -> tuple[str, bool]:
        """The files of ``runs`` (all when None); and whether there are none, in which case
        the scan is of a stand-in that must match nothing."""
        files = self.files if runs is None else [f for f in self.files if f.run in runs]
        return _scan(store, [f.path for f in files or self.files[:1]]), not files

    def select(self, skip: Sequence[str] = ()) -> list[str]:
        return [
            f"{self.alias}.{_ident(c)} AS {_ident(f'{self.alias}_{c}')}"
            for c in self.columns
            if c not in skip
        ]

    def names(self) -> list[str]:
        return [f"{self.alias}_{c}" for c in self.columns]


@dataclass(frozen=True)
class _Layout:
    scan: str  # the queried level's files
    empty: bool  # none among the runs asked: a stand-in file lends its columns
    joins: list[_Join]


def _by_run(f: EventFile) -> tuple[int, str]:
    return f.run, f.path


def _in_key_order(events: pa.Table) -> pa.Table:
    """The events sorted by (run, event, sub_event, stream). Tables written from Events are
    stored in key order and read run by run, so this is usually only a check."""
    n = events.num_rows
    if n < 2:
        return events
    keys = [events.column(k).to_numpy() for k in KEY[:3]]
    ahead = np.zeros(n - 1, dtype=bool)
    tied = np.ones(n - 1, dtype=bool)
    for k in keys:
        ahead |= tied & (k[1:] > k[:-1])
        tied &= k[1:] == k[:-1]
    if not (ahead | tied).all():
        # several files of one run (two products at one level), or files written unsorted
        keys.append(_stream_rank(events.column("stream")))
        return events.take(np.lexsort(keys[::-1]))
    # the same event in two streams: only those neighbours' stream names need comparing
    ties = np.flatnonzero(tied)
    if len(ties) == 0:
        return events
    stream = events.column("stream")
    first, second = stream.take(ties), stream.take(ties + 1)
    if pc.all(pc.less_equal(first, second)).as_py():
        return events
    keys.append(_stream_rank(stream))
    return events.take(np.lexsort(keys[::-1]))


def _ancestors(
    con: duckdb.DuckDBPyConnection, store: ObjectStore, events: pa.Table, joins: list[_Join]
) -> tuple[pa.Table, np.ndarray]:
    """The ancestors' columns of ``events``, found by joining only the events' parent keys
    (and their row numbers) to the ancestors' files; and, per result row, its event's row.

    A parent is in its child's run, so the join is done for a group of runs at a time: a hash
    table of ~100,000 parent keys stays in the processor's cache while the ancestors' rows are
    looked up in it, where one of a million would not (-17% in bench/events_join.py)."""
    n = events.num_rows
    children = pa.table(
        {
            "run": events.column("run"),
            **{k: events.column(k) for k in PARENT_KEY},
            "__row": pa.array(np.arange(n, dtype=np.int64)),
        }
    )
    runs = events.column("run").to_numpy()
    starts = np.flatnonzero(np.diff(runs, prepend=runs[:1] - 1)) if n else np.zeros(0, int)
    # groups of whole runs; one group when files differ in columns (a group's scan would lack
    # some) or nothing needs grouping
    cuts = [0]
    for start in starts[1:]:
        if start - cuts[-1] >= _JOIN_GROUP:
            cuts.append(int(start))
    if len(cuts) > 1 and not all(_uniform(con, store, join.files) for join in joins):
        cuts = [0]
    cuts.append(n)
    con.execute("SET preserve_insertion_order = false")  # rows are put in order afterwards
    first_runs = runs[starts].tolist()
    parts = []
    for i, (lo, hi) in enumerate(itertools.pairwise(cuts)):
        inside = (starts >= lo) & (starts < hi)
        group = None if len(cuts) == 2 else {r for r, x in zip(first_runs, inside) if x}
        con.register(f"__children_{i}", children.slice(lo, hi - lo))
        # a parent's own key is its child's parent key: _beside copies it from there
        select = [
            "c.__row",
            *joins[0].select(skip=KEY),
            *(c for j in joins[1:] for c in j.select()),
        ]
        scan, empty = joins[0].scan(store, group)
        lines = [f"FROM __children_{i} AS c", f"JOIN {scan} AS {joins[0].alias}"]
        lines.append(f"  ON {joins[0].on('c', empty)}")
        below = joins[0].alias
        for join in joins[1:]:
            scan, empty = join.scan(store, group)
            lines.append(f"LEFT JOIN {scan} AS {join.alias} ON {join.on(below, empty)}")
            below = join.alias
        parts.append("SELECT " + ", ".join(select) + "\n" + "\n".join(lines))
    found = _arrow(con.sql("\nUNION ALL\n".join(parts)))
    return found, found.column("__row").to_numpy()


def _beside(events: pa.Table, found: tuple[pa.Table, np.ndarray], joins: list[_Join]) -> pa.Table:
    """The events with the ancestors' columns beside them, null where none was found; as a
    left join gives them, in the events' order."""
    ancestors, rows = found
    n, m = events.num_rows, len(rows)
    per_event = np.bincount(rows, minlength=n)
    if (per_event <= 1).all():
        where = np.full(n, -1, dtype=np.int64)
        where[rows] = np.arange(m)
    else:
        # a parent key twice among an ancestor level's current events (two products of one
        # run, say): one row per match, as the join in sql() gives
        lonely = np.flatnonzero(per_event == 0)
        every = np.concatenate([rows, lonely])
        order = np.argsort(every, kind="stable")
        events = events.take(every[order])
        where = np.concatenate([np.arange(m), np.full(len(lonely), -1)])[order]
    found_one = where >= 0
    index = pa.array(where, mask=~found_one)
    everywhere = bool(found_one.all())
    names, columns = list(events.column_names), list(events.columns)
    parent = joins[0]
    for join in joins:
        for column, name in zip(join.columns, join.names(), strict=True):
            if join is parent and column in KEY:
                mine = events.column(f"parent_{column}")
                if not everywhere:
                    mine = pc.if_else(pa.array(found_one), mine, pa.scalar(None, mine.type))
                columns.append(mine)
            else:
                columns.append(ancestors.column(name).take(index))
            names.append(name)
    return pa.Table.from_arrays(columns, names=names)


# -- DuckDB ------------------------------------------------------------------------------------


def _connect(store: ObjectStore) -> duckdb.DuckDBPyConnection:
    """A fresh in-process DuckDB for one query; an object store's files are read through the
    store's own fsspec filesystem, with its credentials and endpoint."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")  # it would draw on the user's terminal
    # a query reads the files' footers twice (its columns, then the query): parse them once
    con.execute("SET parquet_metadata_cache = true")
    if not store.is_local:
        con.register_filesystem(store.fs)
        # a request costs milliseconds: fetch a row group's columns in one read, not one each
        con.execute("SET prefetch_all_parquet_files = true")
    return con


# Tearing down a DuckDB instance that has just joined millions of rows returns its memory to
# the system, ~25 ms (8% of bench/events_join.py); the caller need not wait for it.
_closer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="labledger-duckdb-close")


def _close(con: duckdb.DuckDBPyConnection) -> None:
    _closer.submit(con.close)


def _scan(store: ObjectStore, keys: Iterable[str]) -> str:
    """``read_parquet`` of the stored files. Hive partitioning is off: the ``run=`` and
    ``level=`` in a key are for people and listings, and ``run`` is a column of the file itself.
    ``union_by_name`` lets a level's files differ in data columns (a step's later version may
    add one); a column a file lacks reads as null."""
    return f"read_parquet({_listing(store, keys)}, hive_partitioning = false, union_by_name = true)"


def _listing(store: ObjectStore, keys: Iterable[str]) -> str:
    """The files as a DuckDB list of paths (a local store) or fsspec URLs (an object store)."""
    if store.is_local:
        paths = [store.path(k) for k in keys]
    else:
        paths = [store.fs.unstrip_protocol(store.path(k)) for k in keys]
    return "[" + ", ".join(_literal(p) for p in paths) + "]"


def _columns(con: duckdb.DuckDBPyConnection, scan: str) -> list[str]:
    return list(con.sql(f"SELECT * FROM {scan} LIMIT 0").columns)


def _uniform(con: duckdb.DuckDBPyConnection, store: ObjectStore, files: list[EventFile]) -> bool:
    """Whether every file has the same columns (from the footers, already cached)."""
    found = con.execute(
        "SELECT count(DISTINCT names) FROM (SELECT list(name ORDER BY name) AS names "
        f"FROM parquet_schema({_listing(store, [f.path for f in files])}) GROUP BY file_name)"
    ).fetchall()
    return bool(found) and found[0][0] <= 1


def _empty_sql() -> str:
    """No file at all: no rows, and the key columns only."""
    return (
        "SELECT CAST(NULL AS BIGINT) AS run, CAST(NULL AS BIGINT) AS event, "
        "CAST(NULL AS INTEGER) AS sub_event, CAST(NULL AS VARCHAR) AS stream WHERE false"
    )


def _arrow(relation: Any) -> pa.Table:
    # DuckDB 1.x calls it arrow(), 2.x to_arrow_table()
    fetch = getattr(relation, "to_arrow_table", None) or relation.arrow
    return fetch()


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# -- checking and normalising input ------------------------------------------------------------


def _is_int(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


def _check_level(level: object, name: str) -> int:
    if not _is_int(level) or not 0 <= int(level) <= MAX_LEVEL:  # type: ignore[call-overload]
        raise InvalidArgument(
            f"{name}={level!r}: a processing level is an integer from 0 to {MAX_LEVEL}"
        )
    return int(level)  # type: ignore[call-overload]


def _check_runs(runs: Iterable[int]) -> tuple[int, ...]:
    if isinstance(runs, str | bytes) or not isinstance(runs, Iterable):
        raise InvalidArgument(f"runs={runs!r}: give run numbers, e.g. runs=[1234, 1235]")
    numbers = list(runs)
    bad = [r for r in numbers if not _is_int(r)]
    if bad:
        raise InvalidArgument(f"runs: {bad[0]!r} is not a run number; give integers")
    return tuple(sorted({int(r) for r in numbers}))


def _as_arrow(table: Any) -> pa.Table:
    if isinstance(table, pa.Table):
        return table.replace_schema_metadata(None)
    if type(table).__module__.startswith("pandas") and type(table).__name__ == "DataFrame":
        bad = [c for c in table.columns if not isinstance(c, str)]
        if bad:
            raise InvalidArgument(f"column name {bad[0]!r} is not text; name every column")
        try:
            # a named index (df.set_index("event")) becomes a column again; a plain one is dropped
            named = any(name is not None for name in table.index.names)
            converted = pa.Table.from_pandas(table, preserve_index=named)
        except (pa.ArrowException, TypeError, ValueError) as exc:
            raise InvalidArgument(f"event table: {first_line(exc)}") from None
        return converted.replace_schema_metadata(None)
    if isinstance(table, Mapping):
        arrays: dict[str, pa.ChunkedArray] = {}
        for name, values in table.items():
            if not isinstance(name, str):
                raise InvalidArgument(f"column name {name!r} is not text; name every column")
            if values is None or isinstance(values, str | bytes | int | float | np.generic):
                raise InvalidArgument(
                    f"column {name!r} is one value, {values!r}; give one value per row "
                    "(for the stream of every row, pass stream=...)"
                )
            try:
                if isinstance(values, pa.ChunkedArray):
                    arrays[name] = values
                else:
                    arrays[name] = pa.chunked_array([pa.array(values)])
            except (pa.ArrowException, TypeError, ValueError) as exc:
                raise InvalidArgument(
                    f"column {name!r}: cannot store it ({first_line(exc)})"
                ) from None
        lengths = {name: len(a) for name, a in arrays.items()}
        if len(set(lengths.values())) > 1:
            first = next(iter(lengths))
            other = next(n for n, k in lengths.items() if k != lengths[first])
            raise InvalidArgument(
                f"columns differ in length: {first!r} has {lengths[first]} rows, {other!r} "
                f"has {lengths[other]}"
            )
        return pa.table(arrays)
    raise InvalidArgument(
        f"an event table is a pandas DataFrame, a pyarrow Table or a dict of columns, not "
        f"{type(table).__name__}"
    )


def _check_names(names: list[str], has_parent: bool) -> None:
    seen: dict[str, str] = {}
    for name in names:
        if not name:
            raise InvalidArgument("a column has an empty name; name every column")
        folded = name.lower()
        if folded in seen:
            # DuckDB and most SQL treat names case-insensitively: these would collide there
            raise InvalidArgument(
                f"columns {seen[folded]!r} and {name!r} differ only in case; rename one"
            )
        seen[folded] = name
        if folded in KEY_TYPES and name != folded:
            raise InvalidArgument(
                f"column {name!r}: key columns are lower case; call it {folded!r}"
            )
        if folded in PARENT_KEY and not has_parent:
            raise InvalidArgument(
                f"column {name!r} names a parent, but these events have no parent level: pass "
                "parent_level=..., or rename the column"
            )
        if _ANCESTOR_PREFIX.match(name):
            raise InvalidArgument(
                f"column {name!r}: names starting '{name[:3]}' are reserved for the ancestor "
                f"columns with_parent joins; rename it (e.g. 'level{name[1]}_{name[3:]}')"
            )


def _key_column(source: pa.Table, name: str, to: pa.DataType) -> pa.ChunkedArray:
    column = source.column(name)
    n = len(column)
    if pa.types.is_null(column.type) and n == 0:
        return pa.chunked_array([], type=to)
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    if not pa.types.is_integer(column.type):
        hint = ""
        if pa.types.is_floating(column.type):
            hint = " (a pandas column with missing values turns float: keys cannot be missing)"
        raise InvalidArgument(f"column {name!r} holds {column.type}, not integers{hint}")
    _no_nulls(column, name)
    try:
        return column.cast(to)  # safe: refuses values that do not fit
    except pa.ArrowInvalid:
        info = np.iinfo(to.to_pandas_dtype())
        outside = pc.or_(pc.less(column, info.min), pc.greater(column, info.max))
        row = _first_true(outside)
        raise InvalidArgument(
            f"column {name!r}: row {row} holds {column[row].as_py()}, outside {to} "
            f"({info.min}..{info.max})"
        ) from None


def _required_key(source: pa.Table, name: str, to: pa.DataType) -> pa.ChunkedArray:
    if name not in source.column_names:
        raise InvalidArgument(
            f"the event table has no {name!r} column (its columns: "
            f"{', '.join(source.column_names) or 'none'}); every event needs one"
        )
    return _key_column(source, name, to)


def _optional_key(source: pa.Table, name: str, to: pa.DataType, default: int) -> pa.ChunkedArray:
    if name in source.column_names:
        return _key_column(source, name, to)
    return _full(source.num_rows, default, to)


def _stream(source: pa.Table, name: str, default: str | None) -> pa.ChunkedArray:
    n = source.num_rows
    if name not in source.column_names:
        if default is None:
            raise InvalidArgument(
                "no stream: add a 'stream' column or pass stream='...' (the name of the "
                "stream, e.g. the trigger or split, these events belong to)"
            )
        return _full(n, default, pa.string())
    if default is not None:
        raise InvalidArgument(
            f"stream={default!r} and a 'stream' column both given; give the stream one way"
        )
    column = source.column(name)
    if pa.types.is_null(column.type) and n == 0:
        return pa.chunked_array([], type=pa.string())
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    if not (
        pa.types.is_string(column.type)
        or pa.types.is_large_string(column.type)
        or pa.types.is_string_view(column.type)
    ):
        raise InvalidArgument(f"column {name!r} holds {column.type}, not text; streams are named")
    _no_nulls(column, name)
    return column.cast(pa.string())


def _no_nulls(column: pa.ChunkedArray, name: str) -> None:
    if column.null_count:
        row = _first_true(pc.is_null(column))
        raise InvalidArgument(f"column {name!r} is missing at row {row}; keys cannot be missing")


def _full(n: int, value: object, to: pa.DataType) -> pa.ChunkedArray:
    if pa.types.is_string(to):
        # one dictionary entry repeated: cheap to make, then plain strings as the schema says
        indices = pa.array(np.zeros(n, dtype=np.int32))
        return pa.chunked_array(
            [pa.DictionaryArray.from_arrays(indices, pa.array([value], to)).cast(to)]
        )
    return pa.chunked_array([pa.array(np.full(n, value, dtype=to.to_pandas_dtype()))])


def _first_true(mask: pa.ChunkedArray | pa.Array) -> int:
    return int(pc.index(mask, True).as_py())


def _key_order(
    event: pa.ChunkedArray, sub_event: pa.ChunkedArray, stream: pa.ChunkedArray
) -> tuple[np.ndarray | None, tuple[int, int] | None]:
    """The row order that sorts the table by (event, sub_event, stream), or None when it is
    sorted already; and the first row (in table order) whose key an earlier row has, with that
    earlier row, or None."""
    if len(event) < 2:
        return None, None
    ev = event.to_numpy()
    sub = sub_event.to_numpy()
    codes = _stream_rank(stream)
    order = np.lexsort((codes, sub, ev))  # stable: equal keys stay in table order
    s_ev, s_sub, s_codes = ev[order], sub[order], codes[order]
    same = (s_ev[1:] == s_ev[:-1]) & (s_sub[1:] == s_sub[:-1]) & (s_codes[1:] == s_codes[:-1])
    repeat = None
    if same.any():
        again = int(order[1:][same].min())
        mine = (ev == ev[again]) & (sub == sub[again]) & (codes == codes[again])
        repeat = int(np.flatnonzero(mine)[0]), again
    if (order[1:] > order[:-1]).all():
        return None, repeat
    return order, repeat


def _stream_rank(stream: pa.ChunkedArray) -> np.ndarray:
    """Each row's stream as an integer that sorts as the names do."""
    encoded = pc.dictionary_encode(stream).combine_chunks()
    # dictionary codes number the streams as they first appear; rank them by name instead
    rank = np.argsort(np.argsort(encoded.dictionary.to_numpy(zero_copy_only=False)))
    return rank[encoded.indices.to_numpy(zero_copy_only=False)]


def _key_text(run: int, columns: Mapping[str, pa.ChunkedArray], row: int) -> str:
    return (
        f"event (run {run}, event {columns['event'][row].as_py()}, sub-event "
        f"{columns['sub_event'][row].as_py()}, stream {columns['stream'][row].as_py()!r})"
    )


def _levels_of(table: pa.Table, what: str) -> tuple[int, int | None]:
    """The level and parent level a normalised table carries; refuses any other table."""
    meta = table.schema.metadata or {}
    expected = list(KEY) + (list(PARENT_KEY) if b"parent_level" in meta else [])
    head = table.column_names[: len(expected)]
    types_ok = all(table.schema.field(n).type == KEY_TYPES[n] for n in head if n in KEY_TYPES)
    if b"level" not in meta or head != expected or not types_ok:
        raise InvalidArgument(
            f"{what}: not a normalised event table (give it what Events(...).table(run) returns)"
        )
    parent = meta.get(b"parent_level")
    return int(meta[b"level"]), None if parent is None else int(parent)


def _runs_text(runs: Sequence[int]) -> str:
    if len(runs) == 1:
        return f"run {runs[0]}"
    if len(runs) <= 5:
        return "runs " + ", ".join(map(str, runs))
    return f"{len(runs)} runs ({runs[0]}..{runs[-1]})"


__all__ = [
    "EventFile",
    "EventQuery",
    "Events",
    "check_parents",
    "event_key",
    "read_events",
    "write_events",
]
