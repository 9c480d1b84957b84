"""A processing level's event table: what a step returns, checked and normalised.

A detector's analysis runs in levels: Level 2 keeps the events that pass a first filter, Level 3
refines them, Level 4 is what an analysis uses. A step may emit an event table at a level with
:class:`Events`; each row is keyed by ``(run, event, sub_event, stream)`` and, when the level has
a parent level, names the event it came from there by ``(parent_event, parent_sub_event,
parent_stream)`` in the same run. Everything a step gives is checked here, before anything is
written: one line naming the column, row or key, and what to do.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from labledger.errors import InvalidArgument, first_line

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
        self.level = check_level(level, "level")
        if parent_level is not None:
            parent_level = check_level(parent_level, "parent_level")
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
        if not is_int(run) or run < 0:
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


# -- checking and normalising input ------------------------------------------------------------


def is_int(value: object) -> bool:
    """An integer, Python's or NumPy's, and not a bool."""
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


def check_level(level: object, name: str) -> int:
    """``level`` as a processing level (0..MAX_LEVEL); refuses anything else, named ``name``."""
    if not is_int(level) or not 0 <= int(level) <= MAX_LEVEL:  # type: ignore[call-overload]
        raise InvalidArgument(
            f"{name}={level!r}: a processing level is an integer from 0 to {MAX_LEVEL}"
        )
    return int(level)  # type: ignore[call-overload]


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
    codes = stream_rank(stream)
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


def stream_rank(stream: pa.ChunkedArray) -> np.ndarray:
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


def levels_of(table: pa.Table, what: str) -> tuple[int, int | None]:
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
