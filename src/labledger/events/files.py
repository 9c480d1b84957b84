"""Event tables kept as Parquet files, and the check that the parents they name exist.

Tables are stored as Parquet, one file per run and product:

    events/level=4/run=1234/<product id>.parquet

so any Parquet reader (DuckDB, pandas, Spark) can open them without labledger, and a query of
some runs reads only their files. Which files are current is the catalog's to know: the lineage
framework lists them as :class:`EventFile` and records what :func:`write_events` wrote.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

import labledger.events.engine as engine
from labledger.errors import InvalidArgument, NotFound
from labledger.events.table import PARENT_KEY, levels_of
from labledger.store import Store

# Rows per Parquet row group: DuckDB and pyarrow read row groups in parallel, so a run's file of
# 100,000 events is a few of them rather than one; fewer than ~64k costs in per-group overhead.
_ROW_GROUP = 65_536


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


def write_events(store: Store, key: str, table: pa.Table) -> dict[str, Any]:
    """Write a table from :meth:`Events.table` at ``key`` as Parquet (zstd); a small summary.

    >>> import tempfile
    >>> from labledger.events import Events
    >>> from labledger.store import open_store
    >>> store = open_store(tempfile.mkdtemp())
    >>> t = Events({"event": [1, 2]}, level=2, stream="hits").table(1234)
    >>> summary = write_events(store, event_key(2, 1234, "p1"), t)
    >>> summary["rows"], summary["streams"], summary["parent_level"]
    (2, ['hits'], None)
    """
    _level, parent_level = levels_of(table, f"write_events({key!r})")
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


def read_events(store: Store, key: str) -> pa.Table:
    """One stored event table, whole, with its ``level``/``parent_level`` metadata.

    >>> import tempfile
    >>> from labledger.events import Events
    >>> from labledger.store import open_store
    >>> store = open_store(tempfile.mkdtemp())
    >>> _ = write_events(store, "e.parquet", Events({"event": [1]}, level=2, stream="s").table(9))
    >>> read_events(store, "e.parquet").schema.metadata[b"level"]
    b'2'
    """
    try:
        local = store.local_path(key)
        if local is not None:
            return pq.read_table(local)
        with store.open_read(key) as f:
            return pq.read_table(f)
    except FileNotFoundError:
        raise NotFound(f"no event table at {key!r} in {store.url}") from None


def check_parents(table: pa.Table, parents: Sequence[EventFile], store: Store) -> None:
    """Refuse events whose parent key is not among the events of ``parents``.

    Every ``(run, parent_event, parent_sub_event, parent_stream)`` of ``table`` must be the
    ``(run, event, sub_event, stream)`` of an event in the parent files. The error names the
    first missing parent in table order and how many are missing. DuckDB does it as an
    anti-join over the parent files, reading only their key columns.

    >>> import tempfile
    >>> from labledger.events import Events
    >>> from labledger.store import open_store
    >>> store = open_store(tempfile.mkdtemp())
    >>> key = event_key(2, 1, "p2")
    >>> _ = write_events(store, key, Events({"event": [1, 2]}, level=2, stream="s").table(1))
    >>> l4 = Events({"event": [9], "parent_event": [3]}, level=4, parent_level=2, stream="s")
    >>> check_parents(l4.table(1), [EventFile(key, 1, 2, None, "p2")], store)
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    labledger.errors.InvalidArgument: level-4 events of run 1: parent (run 1, event 3, ...
    """
    level, parent_level = levels_of(table, "check_parents")
    runs = sorted(set(pc.unique(table.column("run")).to_pylist()))
    where = f"level-{level} events of {runs_text(runs)}"
    if parent_level is None:
        raise InvalidArgument(f"{where} declare no parent level; there are no parents to check")
    if table.num_rows == 0:
        return
    if not parents:
        raise InvalidArgument(
            f"{where} name parents at level {parent_level}, but there are no level-"
            f"{parent_level} events of {runs_text(runs)}; compute level {parent_level} first"
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
    con = engine.connect(store)
    try:
        con.register("children", children)
        found = con.execute(
            f"""
            SELECT c.row, c.run, c.parent_event, c.parent_sub_event, c.parent_stream,
                   count(*) OVER () AS missing
            FROM children AS c
            ANTI JOIN {engine.scan(store, [p.path for p in parents])} AS p
              ON p.run = c.run AND p.event = c.parent_event
             AND p.sub_event = c.parent_sub_event AND p.stream = c.parent_stream
            ORDER BY c.row
            LIMIT 1
            """
        ).fetchall()  # DuckDB 2 keeps a result open until it is fetched to the end
    finally:
        engine.close(con)
    if found:
        _row, run, event, sub_event, stream, missing = found[0]
        parent_runs = sorted({p.run for p in parents})
        raise InvalidArgument(
            f"{where}: parent (run {run}, event {event}, sub-event {sub_event}, stream "
            f"{stream!r}) is not among the level-{parent_level} events of "
            f"{runs_text(parent_runs)} ({missing} of {table.num_rows} parents missing); check "
            f"the step's parent_event/parent_sub_event/parent_stream, or that level "
            f"{parent_level} of {runs_text(parent_runs)} is the one meant"
        )


def runs_text(runs: Sequence[int]) -> str:
    """Runs for a message: one or a few by number, many by count and range."""
    if len(runs) == 1:
        return f"run {runs[0]}"
    if len(runs) <= 5:
        return "runs " + ", ".join(map(str, runs))
    return f"{len(runs)} runs ({runs[0]}..{runs[-1]})"
