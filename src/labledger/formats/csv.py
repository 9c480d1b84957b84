"""Delimited text: CSV, TSV and the like, one channel per column, streamed with pyarrow.

A text file is kept only as a table: a header line of distinct column names, then rows, with at
least one column of numbers. Before the header, lines that start with ``#`` are the file's
metadata when they read ``key: value`` or ``key = value``; one named like a shot or run
number (``# shot: 1234``) states the run's number. The separator (tab, semicolon, comma
or bar) and the decimal mark (a point, or a comma when the separator is not a comma) are read
from the file's first lines, and recorded in the source's attributes (``csv_separator``,
``csv_decimal_mark``). A column of numbers and text mixed is refused: which is meant is the
writer's to say. A column named like time (``time``, ``t``, ``Time (s)``, ``timestamp``) of
numbers or timestamps becomes the time axis of the others; a unit in brackets at the end of a
column name (``U (V)``, ``I [mA]``) is kept as the column's ``units``. docs/formats.md has the
whole of it, with examples.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
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
from labledger.formats.values import decode_text, parse_number, to_scalar
from labledger.times import parse_time

EXTENSIONS = (".csv", ".tsv", ".txt", ".dat")
# tried in this order: the first that splits the header and the first rows alike wins (a file
# whose fields are separated by semicolons writes its decimals with commas)
SEPARATORS = ("\t", ";", ",", "|")
_TIME = re.compile(r"^(t|time|timestamp|time_s)\s*(?:[\(\[]\s*(?P<unit>[^\)\]]+)[\)\]])?$", re.I)
_UNIT = re.compile(r"^.*?\S\s*[\(\[]\s*(?P<unit>[^\(\)\[\]]*[^\s\(\)\[\]])\s*[\)\]]$")
_META = re.compile(r"^#\s*(?P<key>[^:=]+?)\s*[:=]\s*(?P<value>.*?)\s*$")
_HEAD_BYTES = 64 << 10
BLOCK_BYTES = 8 << 20  # read, typed and handed to ingest at a time
_SAMPLE_LINES = 200  # lines after the header that decide the separator and the decimal mark
_POINT_NUMBER = re.compile(r"[-+]?\d*\.\d+(?:[eE][-+]?\d+)?")
_COMMA_NUMBER = re.compile(r"[-+]?\d*,\d+(?:[eE][-+]?\d+)?")
# what pyarrow reads as "no value" in a column of numbers: neither number nor text here
_MISSING = pacsv.ConvertOptions().null_values
_CONVERSION = re.compile(
    r"In CSV column #(?P<column>\d+): .*conversion error to (?P<type>\w+).*invalid value (?P<v>.*)"
)
_KINDS = {"timestamp": "times", "bool": "true/false values"}  # else numbers
_HINT = (
    "labledger keeps a text file only as a table (a header line of column names, then rows) "
    "with at least one column of numbers; keep notes beside the archive, or as '# key: value' "
    "lines above a CSV's header (docs/formats.md)"
)


class CsvFormat:
    name: ClassVar[str] = "csv"
    description: ClassVar[str] = "delimited text: CSV, TSV (pyarrow)"

    def sniff(self, head: bytes, path: Path) -> bool:
        # text by its name and by having no NUL byte; in UTF-8 or not (Latin-1 is common).
        # Whether it is a table is for open() to say, with the reason.
        return path.suffix.lower() in EXTENSIONS and b"\0" not in head

    def open(self, path: Path, limits: Limits | None = None) -> CsvSource:
        return CsvSource(path, limits or Limits())


class CsvSource(Source):
    """A CSV file, described from its comment lines, its header and its first block of rows.

    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "scope_7.csv"
    >>> _ = path.write_text("# gas: Ar\\nt (s);U (V)\\n0;1,5\\n0,5;2,25\\n")
    >>> with CsvSource(path, Limits()) as source:
    ...     attrs = source.tree["attrs"]
    ...     [(name, v.tolist()) for name, v in source.blocks()]
    [('t (s)', [0.0, 0.5]), ('U (V)', [1.5, 2.25])]
    >>> attrs["csv_separator"], attrs["csv_decimal_mark"], attrs["gas"]
    (';', ',', 'Ar')
    """

    def __init__(self, path: Path, limits: Limits):
        super().__init__(path=path, format="csv")
        with open(path, "rb") as f:
            raw = f.read(_HEAD_BYTES)
        lines = raw.decode("utf-8", "replace").splitlines()
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
        if len(raw) == _HEAD_BYTES and len(lines) > skip + 1:
            lines.pop()  # cut short by the read: not a line of the file
        body = [line for line in lines[skip:] if line.strip()][: _SAMPLE_LINES + 1]
        if not body:
            raise BadInput(f"{path}: no header line with column names; {_HINT}")
        separator = _separator(body)
        mark = _decimal_mark(path, body[1:], separator)
        if mark == ",":  # the comment lines write their numbers as the rows do
            for key, value in self.metadata.items():
                if isinstance(value, str) and _COMMA_NUMBER.fullmatch(value):
                    self.metadata[key] = float(value.replace(",", "."))
        columns = _count_columns(path, skip, separator, limits.columns)
        if columns > limits.columns:
            what = f"its header has {columns} columns or more"  # counting stopped there
            raise refusal(path, "", what, "columns", limits.columns)
        # a file object, not a path: pyarrow cannot open a name that is not UTF-8
        self._handle = open(path, "rb")  # noqa: SIM115 (closed with the source)
        try:
            self._reader = pacsv.open_csv(
                self._handle,
                read_options=pacsv.ReadOptions(skip_rows=skip, block_size=BLOCK_BYTES),
                parse_options=pacsv.ParseOptions(delimiter=separator),
                convert_options=pacsv.ConvertOptions(decimal_point=mark),
            )
        except (pa.ArrowInvalid, OSError, UnicodeDecodeError) as exc:
            self._handle.close()
            raise BadInput(f"{path}: not a table ({first_line(exc)}); {_HINT}") from None
        try:
            self._describe(path, separator, mark)
        except BaseException:
            self.close()
            raise

    def _describe(self, path: Path, separator: str, mark: str) -> None:
        names = [n.strip() for n in self._reader.schema.names]
        if len(set(names)) != len(names) or "" in names:
            raise BadInput(f"{path}: column names must be present and distinct, got {names}")
        self._names = names
        # numbers and text seen in each text column so far: (data row, cell) of the first
        self._numbers: dict[str, tuple[int, str]] = {}
        self._texts: dict[str, tuple[int, str]] = {}
        m = re.escape(mark)
        self._number = rf"^\s*[-+]?(?:\d+(?:{m}\d*)?|{m}\d+)(?:[eE][-+]?\d+)?\s*$"
        self._row = 1  # the data row the next batch starts at
        self._first: pa.RecordBatch | None = self._next_batch()
        if self._first is None:
            raise BadInput(f"{path}: a header line but no rows of values; {_HINT}")
        schema = self._reader.schema
        dtypes = [_numpy_dtype(field.type) for field in schema]
        numeric = [d.kind in "iuf" and not pa.types.is_null(f.type) for d, f in zip(dtypes, schema)]
        if not any(numeric):
            shown = ", ".join(repr(n[:40]) for n in names[:3]) + (", …" if len(names) > 3 else "")
            raise BadInput(
                f"{path}: not a table of numbers: its {len(names)} column(s) ({shown}) hold no "
                f"numbers; {_HINT}"
            )
        self._check_mixed(self._first)
        found = next(
            (
                (n, said)
                for n, d in zip(names, dtypes)
                if (said := _TIME.match(n)) and d.kind in "iufM"
            ),
            None,
        )
        time = found[0] if found else None
        axis: list[Axis] = []
        if found:
            axis = [Axis(name="time", channel=found[0], unit=found[1]["unit"] or None)]
        attrs = {**self.metadata, "csv_separator": separator, "csv_decimal_mark": mark}
        self.tree = tree_node(path.name, "file", attrs)
        self.numbers = number_properties(self.metadata, "CSV header")  # "# shot: 1234"
        for name, field, dtype in zip(names, schema, dtypes):
            info = ChannelInfo(
                key=name,
                segments=(name,),
                shape=(None,),
                dtype=dtype,
                attrs={"arrow_type": str(field.type)},
                axes=[] if name == time else axis,
            )
            unit = unit_in_name(name)
            if unit:
                info.attrs["units"] = unit
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
        batch, self._first = self._first, None
        while batch is not None:
            for name, column in zip(self._names, batch.columns):
                integers, booleans = (
                    pa.types.is_integer(column.type),
                    pa.types.is_boolean(column.type),
                )
                if column.null_count and (integers or booleans):  # no value for "missing"
                    kind = "integers" if integers else "true/false values"
                    raise BadInput(
                        f"{self.path}: column {name!r} holds {kind} but has empty cells "
                        f"after data row {self._row - batch.num_rows}; fill them (or write "
                        "integers as decimals)"
                    )
                yield name, _to_numpy(column)
            batch = self._next_batch()
            if batch is not None:
                self._check_mixed(batch)

    def _next_batch(self) -> pa.RecordBatch | None:
        """The next batch of rows, None at the end; a cell that does not fit its column's type
        is refused, naming the column and the cell."""
        try:
            batch = self._reader.read_next_batch()
        except StopIteration:
            return None
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            m = _CONVERSION.search(first_line(exc))
            if m and int(m["column"]) < len(self._names):
                name = self._names[int(m["column"])]
                kind = next((v for k, v in _KINDS.items() if m["type"].startswith(k)), "numbers")
                cell = m["v"].strip("'\"").strip()
                if kind == "numbers" and _COMMA_NUMBER.fullmatch(cell):  # the sample missed it
                    raise BadInput(_LATE_COMMA.format(self.path, name, cell, self._row)) from None
                raise BadInput(
                    f"{self.path}: after data row {self._row}: column {name!r} holds {kind}, "
                    f"then {m['v'][:60]}; labledger does not guess which is meant: make the "
                    "cell one of the column's kind, or leave it empty for a missing value"
                ) from None
            raise BadInput(
                f"{self.path}: after data row {self._row}: {first_line(exc)} (a column changes "
                "type or a line has the wrong number of fields)"
            ) from None
        if batch.num_rows == 0:
            return self._next_batch()
        self._row += batch.num_rows
        return batch

    def _check_mixed(self, batch: pa.RecordBatch) -> None:
        """Refuse a text column some of whose cells are numbers: a column of numbers with a
        stray word in it, or of text that happens to hold numbers, is the writer's to settle."""
        start = self._row - batch.num_rows
        for name, column in zip(self._names, batch.columns):
            if not (pa.types.is_string(column.type) or pa.types.is_binary(column.type)):
                continue
            numbers = pc.match_substring_regex(column, self._number)
            missing = pc.match_substring_regex(column, _MISSING_PATTERN)
            texts = pc.invert(pc.or_(numbers, missing))
            for seen, found in ((self._numbers, numbers), (self._texts, texts)):
                if name not in seen:
                    at = pc.index(found, True).as_py()
                    if at >= 0:
                        seen[name] = (start + at, _cell(column[at].as_py()))
            if name in self._numbers and name in self._texts:
                (n_row, number), (t_row, text) = self._numbers[name], self._texts[name]
                if _COMMA_NUMBER.fullmatch(text.strip()):  # a decimal comma the sample missed
                    raise BadInput(_LATE_COMMA.format(self.path, name, text, f"{t_row - 1}"))
                raise BadInput(
                    f"{self.path}: column {name!r} holds numbers and text (data row {n_row}: "
                    f"{number!r}, data row {t_row}: {text!r}); labledger does not guess which "
                    "is meant: make every cell a number (empty or NaN for a missing value), "
                    "or none of them"
                )

    def close(self) -> None:
        reader = getattr(self, "_reader", None)
        if reader is not None:
            reader.close()
        handle = getattr(self, "_handle", None)
        if handle is not None:
            handle.close()


_LATE_COMMA = (
    "{0}: column {1!r} has {2!r} after data row {3}, a number with a decimal comma, where the "
    "file's first lines (the first 64 kB) use a decimal point; write every number one way"
)
_MISSING_PATTERN = "^\\s*(?:" + "|".join(re.escape(v) for v in _MISSING) + ")\\s*$"


def _cell(value: str | bytes | None) -> str:
    text = decode_text(value) if isinstance(value, bytes) else (value or "")
    return text.strip()[:60]


def _separator(lines: list[str]) -> str:
    """The separator that splits the most of ``lines`` (the header first) into as many fields
    as the header, at least two; on a tie, the first of :data:`SEPARATORS`. A comma if none
    splits the header: one column (or no table, which pyarrow then says)."""
    best, most = ",", 0
    for separator in SEPARATORS:
        widths = [len(next(csv.reader([line], delimiter=separator), [])) for line in lines]
        if widths[0] < 2:
            continue
        agree = sum(w == widths[0] for w in widths)
        if agree > most:
            best, most = separator, agree
    return best


def _decimal_mark(path: Path, rows: list[str], separator: str) -> str:
    """A comma if the cells of ``rows`` write numbers with a decimal comma, a point otherwise.
    Both in one file, or such numbers (quoted) in a comma-separated file, are refused: which is
    meant is the writer's to say (``1,234`` may be a thousand or a decimal)."""
    comma = point = None
    for i, line in enumerate(rows, start=1):
        for cell in next(csv.reader([line], delimiter=separator), []):
            cell = cell.strip()
            if comma is None and _COMMA_NUMBER.fullmatch(cell):
                comma = (i, cell)
            elif point is None and _POINT_NUMBER.fullmatch(cell):
                point = (i, cell)
    if comma is None:
        return "."
    if separator == ",":  # quoted: "1,234" is a thousand to some writers, 1.234 to others
        raise BadInput(
            f"{path}: a comma-separated file with numbers written with a comma (data row "
            f"{comma[0]}: {comma[1]!r}); write decimals with a point, or separate the fields "
            "with ';' and write every decimal with a comma"
        )
    if point is not None:
        raise BadInput(
            f"{path}: numbers written with a decimal comma (data row {comma[0]}: {comma[1]!r}) "
            f"and with a decimal point (data row {point[0]}: {point[1]!r}); write them all one "
            "way"
        )
    return ","


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


def unit_in_name(name: str) -> str | None:
    """The unit a column's name ends with, in brackets, if it does.

    >>> unit_in_name("T (Deg C)"), unit_in_name("I [mA]"), unit_in_name("U")
    ('Deg C', 'mA', None)
    """
    found = _UNIT.match(name)
    return found["unit"] if found else None
