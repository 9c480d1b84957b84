"""Processing levels and event tables: one row per physics event, keyed, linked to its parents.

A detector's analysis runs in levels: Level 2 keeps the events that pass a first filter, Level 3
refines them, Level 4 is what an analysis uses. A step may emit an event table at a level with
:class:`Events`; each row is keyed by ``(run, event, sub_event, stream)`` and, when the level has
a parent level, names the event it came from there by ``(parent_event, parent_sub_event,
parent_stream)`` in the same run. Tables are stored as Parquet, one file per run and product:

    events/level=4/run=1234/<product id>.parquet

so any Parquet reader (DuckDB, pandas, Spark) can open them without labledger, and a query of
some runs reads only their files. :class:`EventQuery` answers ``la.events(level=4)`` and
``.with_parent(level=2)`` with DuckDB, which reads the files in place, in parallel, and joins
with a hash join; ``docs/events.md`` has the layout, the query and the measurements.

This module stands alone: the lineage framework hands it the store and a way to list a level's
current files, and records what it writes in the catalog.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
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
        self._run = _optional_key(source, "run", pa.int64(), default=None)
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
                if "parent_stream" in source.column_names
                else columns["stream"]
            )
        for name in source.column_names:
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
        repeat = _first_repeat(
            self._columns["event"], self._columns["sub_event"], self._columns["stream"]
        )
        if repeat is not None:
            first, again = repeat
            raise InvalidArgument(
                f"{where}: {_key_text(run, self._columns, again)} appears more than once (rows "
                f"{first} and {again}); (event, sub_event, stream) must be unique in a run"
            )
        names = ["run", *self._columns]
        arrays = [_full(n, run, pa.int64()), *self._columns.values()]
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
    floats = [f.name for f in table.schema if pa.types.is_floating(f.type)]
    with store.open_write(key) as f:
        pq.write_table(
            table,
            f,
            compression="zstd",
            row_group_size=_ROW_GROUP,
            # keys and streams repeat: dictionary pages keep them to a few bits per row
            use_dictionary=[name for name in table.column_names if name not in floats],
            # measurements are floats whose mantissas zstd cannot shrink; split into byte
            # planes (sign/exponent bytes together) they compress by a quarter more and
            # decode a third faster (bench/events_join.py, docs/events.md)
            column_encoding={name: "BYTE_STREAM_SPLIT" for name in floats} or None,
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
        ).fetchone()
    finally:
        con.close()
    if found is not None:
        _row, run, event, sub_event, stream, missing = found
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
    ``l2_energy``...). Every event of the level appears once (a left join: an event whose
    parent has since disappeared has nulls there). Rows come sorted by their key.

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
        """The DuckDB SQL this query runs, to extend or to run in a DuckDB shell."""
        con = _connect(self.store)
        try:
            return self._sql(con)
        finally:
            con.close()

    def to_arrow(self) -> pa.Table:
        """The events (and their ancestors' columns) as a pyarrow Table."""
        con = _connect(self.store)
        try:
            return _arrow(con.sql(self._sql(con)))
        finally:
            con.close()

    def to_pandas(self) -> pandas.DataFrame:
        """The events (and their ancestors' columns) as a pandas DataFrame."""
        return self.to_arrow().to_pandas()

    def count(self) -> int:
        """How many rows :meth:`to_arrow` would give, without fetching them."""
        con = _connect(self.store)
        try:
            found = con.execute(f"SELECT count(*) FROM ({self._sql(con, order=False)})").fetchone()
            return int(found[0]) if found else 0
        finally:
            con.close()

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

    def _sql(self, con: duckdb.DuckDBPyConnection, order: bool = True) -> str:
        plan = self._plan()
        _level, chosen, stand_in = plan[0]
        if not chosen and not stand_in:  # nothing recorded at this level at all
            return _empty_sql()
        empty = not chosen
        alias = "e"
        lines = [f"FROM {_scan(self.store, [f.path for f in chosen or stand_in])} AS {alias}"]
        select = [f"{alias}.*"]
        below = alias
        for ancestor, files, spare in plan[1:]:
            a = f"l{ancestor}"
            scan = _scan(self.store, [f.path for f in files or spare])
            empty = empty or not files
            lines.append(
                f"LEFT JOIN {scan} AS {a}\n"
                f"  ON {a}.run = {below}.run AND {a}.event = {below}.parent_event"
                f" AND {a}.sub_event = {below}.parent_sub_event"
                f" AND {a}.stream = {below}.parent_stream"
            )
            if ancestor in self.ancestors:
                columns = [c for c in _columns(con, scan) if c != "run"]
                select += [f"{a}.{_ident(c)} AS {_ident(f'{a}_{c}')}" for c in columns]
            below = a
        where = []
        if self.stream is not None:
            where.append(f"{alias}.stream = {_literal(self.stream)}")
        if empty:
            where.append("false")  # a stand-in file only lends its columns
        sql = "SELECT " + ",\n       ".join(select) + "\n" + "\n".join(lines)
        if where:
            sql += "\nWHERE " + " AND ".join(where)
        if order:
            sql += f"\nORDER BY {alias}.run, {alias}.event, {alias}.sub_event, {alias}.stream"
        return sql


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
    return con


def _scan(store: ObjectStore, keys: Iterable[str]) -> str:
    """``read_parquet`` of the stored files. Hive partitioning is off: the ``run=`` and
    ``level=`` in a key are for people and listings, and ``run`` is a column of the file itself.
    ``union_by_name`` lets a level's files differ in data columns (a step's later version may
    add one); a column a file lacks reads as null."""
    if store.is_local:
        paths = [store.path(k) for k in keys]
    else:
        paths = [store.fs.unstrip_protocol(store.path(k)) for k in keys]
    listing = ", ".join(_literal(p) for p in paths)
    return f"read_parquet([{listing}], hive_partitioning = false, union_by_name = true)"


def _columns(con: duckdb.DuckDBPyConnection, scan: str) -> list[str]:
    return list(con.sql(f"SELECT * FROM {scan} LIMIT 0").columns)


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


def _optional_key(
    source: pa.Table, name: str, to: pa.DataType, default: int | None
) -> pa.ChunkedArray | None:
    if name in source.column_names:
        return _key_column(source, name, to)
    return None if default is None else _full(source.num_rows, default, to)


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


def _first_repeat(
    event: pa.ChunkedArray, sub_event: pa.ChunkedArray, stream: pa.ChunkedArray
) -> tuple[int, int] | None:
    """The first row (in table order) whose key an earlier row has, and that earlier row."""
    if len(event) < 2:
        return None
    ev = event.to_numpy()
    sub = sub_event.to_numpy()
    codes = pc.dictionary_encode(stream).combine_chunks().indices.to_numpy(zero_copy_only=False)
    order = np.lexsort((sub, ev, codes))  # stable: equal keys stay in table order
    s_ev, s_sub, s_codes = ev[order], sub[order], codes[order]
    same = (s_ev[1:] == s_ev[:-1]) & (s_sub[1:] == s_sub[:-1]) & (s_codes[1:] == s_codes[:-1])
    if not same.any():
        return None
    again = int(order[1:][same].min())
    mine = (ev == ev[again]) & (sub == sub[again]) & (codes == codes[again])
    return int(np.flatnonzero(mine)[0]), again


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
