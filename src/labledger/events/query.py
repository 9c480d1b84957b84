"""Queries of a level's current events, each joined to its ancestors, planned for DuckDB.

:class:`EventQuery` answers ``la.events(level=4)`` and ``.with_parent(level=2)`` with DuckDB,
which reads the files in place, in parallel: it reads the events, hash-joins only their parent
keys to the ancestors' files a group of runs at a time, and puts the ancestors' columns beside
the events. ``docs/events.md`` has the layout, the query and the measurements (a million
Level-4 events with their parents among ten million Level-2 ones in 0.4 s on two cores, about
five times faster than pandas).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

import labledger.events.engine as engine
from labledger.errors import InvalidArgument, NotFound
from labledger.events.files import EventFile, runs_text
from labledger.events.table import KEY, PARENT_KEY, check_level, is_int, stream_rank
from labledger.store import Store

if TYPE_CHECKING:
    import duckdb
    import pandas

# Parent keys per hash table when a query joins events to their ancestors, a group of runs at
# a time (see _ancestors).
_JOIN_GROUP = 100_000


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
    >>> from labledger.events import Events, event_key, write_events
    >>> from labledger.store import open_store
    >>> store = open_store(tempfile.mkdtemp())
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
        store: Store,
        files: Callable[[int], list[EventFile]],
        level: int,
        runs: Sequence[int] | None = None,
        stream: str | None = None,
    ) -> None:
        self.store = store
        self._files = files
        self.level = check_level(level, "level")
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
            parts.append(f"runs={runs_text(list(self.runs))!r}")
        if self.stream is not None:
            parts.append(f"stream={self.stream!r}")
        return f"EventQuery({', '.join(parts)})"

    def with_parent(self, level: int) -> EventQuery:
        """The same events, each joined to its ancestor at ``level`` (columns ``l{level}_*``).

        Refuses a level that is not on the chain of declared parent levels, or a chain whose
        files disagree. Calling it again adds another ancestor (``.with_parent(3)
        .with_parent(2)`` gives both ``l3_*`` and ``l2_*``).
        """
        level = check_level(level, "level")
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
        con = engine.connect(self.store)
        try:
            return self._sql(con)
        finally:
            engine.close(con)

    def to_arrow(self) -> pa.Table:
        """The events (and their ancestors' columns) as a pyarrow Table, sorted by run, event,
        sub-event and stream."""
        con = engine.connect(self.store)
        try:
            layout = self._layout(con)
            if layout is None:
                return engine.arrow(con.sql(_empty_sql()))
            events = engine.arrow(con.sql(f"SELECT * FROM {layout.scan} AS e{self._where(layout)}"))
            events = _in_key_order(events)
            if not layout.joins:
                return events
            return _beside(events, _ancestors(con, self.store, events, layout.joins), layout.joins)
        finally:
            engine.close(con)

    def to_pandas(self) -> pandas.DataFrame:
        """The events (and their ancestors' columns) as a pandas DataFrame."""
        return self.to_arrow().to_pandas()

    def count(self) -> int:
        """How many rows :meth:`to_arrow` would give, without fetching them."""
        con = engine.connect(self.store)
        try:
            sql = f"SELECT count(*) FROM ({self._sql(con, order=False)})"
            return int(con.execute(sql).fetchall()[0][0])
        finally:
            engine.close(con)

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
                    f"{runs_text(sorted(r))} declare "
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
            scan = engine.scan(self.store, [f.path for f in files])
            wanted = ancestor in self.ancestors
            columns = [c for c in engine.columns(con, scan) if c != "run"] if wanted else []
            joins.append(_Join(ancestor, files, not found, columns))
        files = sorted(chosen or stand_in, key=_by_run)
        return _Layout(engine.scan(self.store, [f.path for f in files]), not chosen, joins)

    def _where(self, layout: _Layout) -> str:
        where = []
        if self.stream is not None:
            where.append(f"e.stream = {engine.literal(self.stream)}")
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
            scan = engine.scan(self.store, [f.path for f in join.files])
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

    def scan(self, store: Store, runs: set[int] | None = None) -> tuple[str, bool]:
        """The files of ``runs`` (all when None); and whether there are none, in which case
        the scan is of a stand-in that must match nothing."""
        files = self.files if runs is None else [f for f in self.files if f.run in runs]
        return engine.scan(store, [f.path for f in files or self.files[:1]]), not files

    def select(self, skip: Sequence[str] = ()) -> list[str]:
        return [
            f"{self.alias}.{engine.ident(c)} AS {engine.ident(f'{self.alias}_{c}')}"
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
        keys.append(stream_rank(events.column("stream")))
        return events.take(np.lexsort(keys[::-1]))
    # the same event in two streams: only those neighbours' stream names need comparing
    ties = np.flatnonzero(tied)
    if len(ties) == 0:
        return events
    stream = events.column("stream")
    first, second = stream.take(ties), stream.take(ties + 1)
    if pc.all(pc.less_equal(first, second)).as_py():
        return events
    keys.append(stream_rank(stream))
    return events.take(np.lexsort(keys[::-1]))


def _ancestors(
    con: duckdb.DuckDBPyConnection, store: Store, events: pa.Table, joins: list[_Join]
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
    found = engine.arrow(con.sql("\nUNION ALL\n".join(parts)))
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


def _uniform(con: duckdb.DuckDBPyConnection, store: Store, files: list[EventFile]) -> bool:
    """Whether every file has the same columns (from the footers, already cached)."""
    found = con.execute(
        "SELECT count(DISTINCT names) FROM (SELECT list(name ORDER BY name) AS names "
        f"FROM parquet_schema({engine.listing(store, [f.path for f in files])}) GROUP BY file_name)"
    ).fetchall()
    return bool(found) and found[0][0] <= 1


def _empty_sql() -> str:
    """No file at all: no rows, and the key columns only."""
    return (
        "SELECT CAST(NULL AS BIGINT) AS run, CAST(NULL AS BIGINT) AS event, "
        "CAST(NULL AS INTEGER) AS sub_event, CAST(NULL AS VARCHAR) AS stream WHERE false"
    )


def _check_runs(runs: Iterable[int]) -> tuple[int, ...]:
    if isinstance(runs, str | bytes) or not isinstance(runs, Iterable):
        raise InvalidArgument(f"runs={runs!r}: give run numbers, e.g. runs=[1234, 1235]")
    numbers = list(runs)
    bad = [r for r in numbers if not is_int(r)]
    if bad:
        raise InvalidArgument(f"runs: {bad[0]!r} is not a run number; give integers")
    return tuple(sorted({int(r) for r in numbers}))
