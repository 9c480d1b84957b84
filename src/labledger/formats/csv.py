"""Delimited text: CSV, TSV and the like, one channel per column, streamed with pyarrow.

Lines at the top that start with ``#`` are the file's metadata when they read ``key: value`` or
``key = value``; one named like a shot or run number (``# shot: 1234``) states the run's
number. A column named like time (``time``, ``t``, ``Time (s)``, ``timestamp``) becomes
the time axis of the others.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import numpy as np
import pyarrow as pa
from pyarrow import csv as pacsv

from labledger.errors import BadInput, first_line
from labledger.formats.base import (
    Axis,
    ChannelInfo,
    Source,
    Unreadable,
    number_properties,
    tree_node,
)
from labledger.formats.limits import Limits, refusal
from labledger.formats.values import decode_text, parse_number, parse_time, to_scalar

EXTENSIONS = (".csv", ".tsv", ".txt", ".dat")
_TIME = re.compile(r"^(t|time|timestamp|time_s)\s*(?:[\(\[]\s*(?P<unit>[^\)\]]+)[\)\]])?$", re.I)
_META = re.compile(r"^#\s*(?P<key>[^:=]+?)\s*[:=]\s*(?P<value>.*?)\s*$")
_HEAD_BYTES = 64 << 10


class CsvFormat:
    name: ClassVar[str] = "csv"
    description: ClassVar[str] = "delimited text: CSV, TSV (pyarrow)"

    def sniff(self, head: bytes, path: Path) -> bool:
        # text by its name and by having no NUL byte; in UTF-8 or not (Latin-1 is common)
        return path.suffix.lower() in EXTENSIONS and b"\0" not in head

    def open(self, path: Path, limits: Limits | None = None) -> CsvSource:
        return CsvSource(path, limits or Limits())


class CsvSource(Source):
    def __init__(self, path: Path, limits: Limits):
        super().__init__(path=path, format="csv")
        with open(path, "rb") as f:
            head = f.read(_HEAD_BYTES).decode("utf-8", "replace")
        lines = head.splitlines()
        skip = 0
        for line in lines:
            if not line.startswith("#"):
                break
            skip += 1
            m = _META.match(line)
            if m:
                value = to_scalar(parse_number(m["value"]))
                if value is not None:
                    self.metadata[m["key"]] = value
        body = [line for line in lines[skip:] if line.strip()]
        if not body:
            raise BadInput(f"{path}: no header line with column names")
        delimiter = _delimiter(body[:20])
        columns = _count_columns(path, skip, delimiter, limits.columns)
        if columns > limits.columns:
            what = f"its header has {columns} columns or more"  # counting stopped there
            raise refusal(path, "", what, "columns", limits.columns)
        # a file object, not a path: pyarrow cannot open a name that is not UTF-8
        self._handle = open(path, "rb")  # noqa: SIM115 (closed with the source)
        try:
            self._reader = pacsv.open_csv(
                self._handle,
                read_options=pacsv.ReadOptions(skip_rows=skip, block_size=8 << 20),
                parse_options=pacsv.ParseOptions(delimiter=delimiter),
            )
        except (pa.ArrowInvalid, OSError, UnicodeDecodeError) as exc:
            self._handle.close()
            raise BadInput(f"{path}: not readable as delimited text ({first_line(exc)})") from None
        names = [n.strip() for n in self._reader.schema.names]
        if len(set(names)) != len(names) or "" in names:
            raise BadInput(f"{path}: column names must be present and distinct, got {names}")
        time = next((n for n in names if _TIME.match(n)), None)
        axis: list[Axis] = []
        if time is not None:
            axis = [Axis(name="time", channel=time, unit=_TIME.match(time)["unit"] or None)]
        self.tree = tree_node(path.name, "file", dict(self.metadata), delimiter=delimiter)
        self.numbers = number_properties(self.metadata, "CSV header")  # "# shot: 1234"
        self._names = names
        for name, field in zip(names, self._reader.schema):
            dtype = _numpy_dtype(field.type)
            info = ChannelInfo(
                key=name,
                segments=(name,),
                shape=(None,),
                dtype=dtype,
                attrs={"arrow_type": str(field.type)},
                axes=[] if name == time else axis,
            )
            self.channels.append(info)
            self.tree["children"].append(
                tree_node(name, "channel", info.attrs, key=name, dtype=dtype.str)
            )
        for key in ("start_time", "started", "date", "datetime"):
            if key in self.metadata and self.started is None:
                self.started = parse_time(str(self.metadata[key]))

    @property
    def data_bytes(self) -> int:
        return self.path.stat().st_size

    def blocks(self) -> Iterator[tuple[str, np.ndarray | Unreadable]]:
        row = 1
        while True:
            try:
                batch = self._reader.read_next_batch()
            except StopIteration:
                return
            except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
                raise BadInput(
                    f"{self.path}: after data row {row}: {first_line(exc)} (a column changes type "
                    "or a line has the wrong number of fields)"
                ) from None
            for name, column in zip(self._names, batch.columns):
                integers, booleans = (
                    pa.types.is_integer(column.type),
                    pa.types.is_boolean(column.type),
                )
                if column.null_count and (integers or booleans):  # no value for "missing"
                    kind = "integers" if integers else "true/false values"
                    raise BadInput(
                        f"{self.path}: column {name!r} holds {kind} but has empty cells "
                        f"after data row {row}; fill them (or write integers as decimals)"
                    )
                yield name, _to_numpy(column)
            row += batch.num_rows

    def close(self) -> None:
        self._reader.close()
        self._handle.close()


def _count_columns(path: Path, skip: int, delimiter: str, limit: int) -> int:
    """The columns of the header line (after ``skip`` comment lines and any blank ones), counted
    as its delimiters are; past ``limit`` the count stops, and the rest of the line is not read."""
    mark = delimiter.encode()
    with open(path, "rb") as f:
        for _ in range(skip):
            f.readline(_HEAD_BYTES)
        count, started = 1, False
        while piece := f.read(_HEAD_BYTES):
            if not started:
                piece = piece.lstrip(b"\r\n")
                started = bool(piece)
            line = piece.split(b"\n", 1)
            count += line[0].count(mark)
            if len(line) > 1 or count > limit:
                break
    return count


def _delimiter(lines: list[str]) -> str:
    try:
        return csv.Sniffer().sniff("\n".join(lines), delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


def _numpy_dtype(arrow_type: pa.DataType) -> np.dtype:
    """How a column is kept: numbers, booleans and timestamps as such, everything else (text,
    times of day, dates, decimals) as text."""
    if pa.types.is_timestamp(arrow_type):
        return np.dtype(f"datetime64[{arrow_type.unit}]")
    if pa.types.is_null(arrow_type):
        return np.dtype("float64")  # an empty column
    if pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type):
        return np.dtype(arrow_type.to_pandas_dtype())
    if pa.types.is_boolean(arrow_type):
        return np.dtype(bool)
    return np.dtype(object)


def _to_numpy(column: pa.Array) -> np.ndarray:
    if pa.types.is_null(column.type):
        return np.full(len(column), np.nan)
    if _numpy_dtype(column.type).kind == "O":
        if pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type):
            values = [decode_text(v) if v is not None else "" for v in column.to_pylist()]
        else:
            values = column.cast(pa.string()).fill_null("").to_pylist()
        return np.asarray(values, dtype=object)
    return column.to_numpy(zero_copy_only=False)
