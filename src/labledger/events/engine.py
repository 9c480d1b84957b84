"""DuckDB over stored event files: a connection per query, the scan of a list of files, quoting.

DuckDB reads the Parquet files in place, in parallel, from a folder or through an object
store's own fsspec filesystem; the parent check and the queries both run on it.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from labledger.store import Store

if TYPE_CHECKING:
    import duckdb


def connect(store: Store) -> duckdb.DuckDBPyConnection:
    """A fresh in-process DuckDB for one query; an object store's files are read through the
    store's own fsspec filesystem, with its credentials and endpoint."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")  # it would draw on the user's terminal
    # a query reads the files' footers twice (its columns, then the query): parse them once
    con.execute("SET parquet_metadata_cache = true")
    fs = store.foreign_filesystem()
    if fs is not None:
        con.register_filesystem(fs)
        # a request costs milliseconds: fetch a row group's columns in one read, not one each
        con.execute("SET prefetch_all_parquet_files = true")
    return con


# Tearing down a DuckDB instance that has just joined millions of rows returns its memory to
# the system, ~25 ms (8% of bench/events_join.py); the caller need not wait for it.
_closer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="labledger-duckdb-close")


def close(con: duckdb.DuckDBPyConnection) -> None:
    """Close ``con`` in the background."""
    _closer.submit(con.close)


def scan(store: Store, keys: Iterable[str]) -> str:
    """``read_parquet`` of the stored files. Hive partitioning is off: the ``run=`` and
    ``level=`` in a key are for people and listings, and ``run`` is a column of the file itself.
    ``union_by_name`` lets a level's files differ in data columns (a step's later version may
    add one); a column a file lacks reads as null."""
    return f"read_parquet({listing(store, keys)}, hive_partitioning = false, union_by_name = true)"


def listing(store: Store, keys: Iterable[str]) -> str:
    """The files as a DuckDB list of paths (a local store) or fsspec URLs (an object store)."""
    return "[" + ", ".join(literal(store.file_url(k)) for k in keys) + "]"


def columns(con: duckdb.DuckDBPyConnection, scan: str) -> list[str]:
    """The column names a scan gives, from the files' footers."""
    return list(con.sql(f"SELECT * FROM {scan} LIMIT 0").columns)


def arrow(relation: Any) -> pa.Table:
    """A DuckDB relation's rows as a pyarrow Table."""
    # DuckDB 1.x calls it arrow(), 2.x to_arrow_table()
    fetch = getattr(relation, "to_arrow_table", None) or relation.arrow
    return fetch()


def ident(name: str) -> str:
    """``name`` as a quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    """``text`` as a quoted SQL string."""
    return "'" + text.replace("'", "''") + "'"
