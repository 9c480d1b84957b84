"""Min/max pyramids: a long 1-D array summarised at a few resolutions as it is written, so that
a 2,000-point preview of a signal of any length reads a few KB instead of the whole signal.

A level cuts the array into cells of ``FIRST * FACTOR**k`` samples (512, 4096, 32768, ...) and
keeps, for each cell, its smallest and its largest sample and where each is (the first
occurrence; NaN is a gap, never an extreme: as :func:`labledger.decimation.minmax`). A level is
stored only if it has at least ``MIN_CELLS`` cells, so an array shorter than
``FIRST * MIN_CELLS`` samples has no pyramid (reading it is as cheap as reading a pyramid), nor
has one that holds only its fill value (stored as nothing, it costs nothing).

Layout (docs/storage-format.md): beside the array ``runs/<id>/data/<n>/<path>``, the group
``runs/<id>/pyramids/<n>/<path>`` (its attributes say which array, its length and the cell sizes)
holds a group per level, ``L1``, ``L2``... with two arrays of ``(cells, 2)`` rows, written by
:class:`~labledger.store.arrays.ArrayWriter` like any other: ``values`` (each cell's minimum and
maximum, in the array's own dtype) and ``offsets`` (where they are, counted from the cell's first
sample). zarr-python opens all of it.

>>> import tempfile
>>> from labledger.store import open_store
>>> store = open_store(tempfile.mkdtemp())
>>> path = "runs/r/data/0/ai0"
>>> x = np.sin(np.arange(2_000_000) / 50_000)
>>> with PyramidWriter(store, path, (), x.dtype) as w:
...     w.write(x)
>>> where, values = preview(store, path, 0, len(x), 2000)
>>> len(where), bool(np.all(values == x[where])), values.max() == x.max()
(2000, True, np.True_)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from labledger.decimation import checked_points
from labledger.store.arrays import ArrayWriter, open_array, stored_metadata, write_group
from labledger.store.base import Store
from labledger.store.layout import pyramid_path

FIRST = 512  # samples in a cell of the finest level (bench/signal_preview.py: the writer's cost)
FACTOR = 8  # cells of a level in a cell of the next
MIN_CELLS = 1024  # a level with fewer cells is not stored: the level below serves its previews
CHUNK_BYTES = 64 << 10  # a zoomed preview reads a few of a level's chunks, not a 1 MiB one
KIND = "labledger.pyramid"  # the attribute that names a pyramid's group


def summarised(dtype: np.dtype, row_shape: tuple[int, ...]) -> bool:
    """Whether an array of ``dtype`` rows of ``row_shape`` gets a pyramid: 1-D real numbers.

    >>> summarised(np.dtype("int16"), ()), summarised(np.dtype("f8"), (3,))
    (True, False)
    """
    return row_shape == () and dtype.kind in "iuf"


class PyramidWriter(ArrayWriter):
    """An :class:`ArrayWriter` of a 1-D numeric array that also writes its min/max pyramid
    from the blocks it is given (no second pass over the stored data): the finest level from
    the samples, each coarser one from the level below; runs of the fill value (:meth:`skip`)
    are summarised without being computed.

    ``path`` is a run's array path (``runs/<id>/data/...``); the pyramid goes to
    :func:`~labledger.store.layout.pyramid_path` of it."""

    def __init__(
        self,
        store: Store,
        path: str,
        row_shape: tuple[int, ...],
        dtype: np.dtype | str,
        attrs: dict[str, Any] | None = None,
        *,
        fill: Any = None,
    ):
        super().__init__(store, path, row_shape, dtype, attrs, fill=fill)
        if not summarised(self.dtype, self.row_shape):
            raise TypeError(f"{path}: a pyramid summarises 1-D real numbers, not {self.dtype}")
        self.pyramid = pyramid_path(path)
        self._levels: list[_Level] = []
        self._cell = np.empty(FIRST, self.dtype)  # the samples of the finest cell under way
        self._ncell = 0

    def write(self, block: np.ndarray) -> None:
        super().write(block)
        block = np.asarray(block, dtype=self.dtype)
        i = 0
        if self._ncell:
            i = min(FIRST - self._ncell, len(block))
            self._cell[self._ncell : self._ncell + i] = block[:i]
            self._ncell += i
            if self._ncell == FIRST:
                self._level(0).add(*_reduce_samples(self._cell.reshape(1, FIRST)))
                self._ncell = 0
        whole = (len(block) - i) // FIRST * FIRST
        if whole:
            self._level(0).add(*_reduce_samples(block[i : i + whole].reshape(-1, FIRST)))
        rest = block[i + whole :]
        self._cell[: len(rest)] = rest
        self._ncell += len(rest)

    def skip(self, n: int) -> None:
        super().skip(n)
        if self._ncell:
            take = min(FIRST - self._ncell, n)
            self._cell[self._ncell : self._ncell + take] = self.fill
            self._ncell += take
            n -= take
            if self._ncell < FIRST:
                return
            self._level(0).add(*_reduce_samples(self._cell.reshape(1, FIRST)))
            self._ncell = 0
        cells, rest = divmod(n, FIRST)
        if cells:
            self._constant(0, cells)
        self._cell[:rest] = self.fill
        self._ncell = rest

    def close(self) -> None:
        if self.closed:
            return
        super().close()
        if self._ncell:  # the last cell, short
            self._level(0).add(*_reduce_samples(self._cell[: self._ncell].reshape(1, -1)))
            self._ncell = 0
        k = 0
        while k < len(self._levels):  # each level's last cells make the next one's last cell
            level = self._levels[k]
            if level.carry and k + 1 < len(self._levels):
                self._levels[k + 1].add(*level.last_cell())
            k += 1
        stored = [level for level in self._levels if level.cells >= MIN_CELLS]
        if not self.shards_written:  # only the fill value, stored as nothing: so is its pyramid
            for level in self._levels:
                level.abort()
            self.store.delete(self.pyramid)
            return
        for level in self._levels:
            level.close()
        if not stored:
            return
        for group in _groups(self.pyramid):
            write_group(self.store, group)
        info = {"of": self.path, "length": self.rows, "cells": [lv.size for lv in stored]}
        write_group(self.store, self.pyramid, {KIND: info})
        for k, level in enumerate(stored, 1):
            write_group(self.store, f"{self.pyramid}/L{k}", {KIND: {"cell": level.size}})

    def abort(self) -> None:
        super().abort()
        for level in self._levels:
            level.abort()

    def _level(self, k: int) -> _Level:
        while len(self._levels) <= k:
            size = FIRST * FACTOR ** len(self._levels)
            at = f"{self.pyramid}/L{len(self._levels) + 1}"
            self._levels.append(_Level(self.store, at, size, self.dtype, self.fill, self._up))
        return self._levels[k]

    def _up(self, level: _Level, values: np.ndarray, offsets: np.ndarray) -> None:
        """Whole groups of ``level``'s cells, made cells of the next level."""
        k = self._levels.index(level)
        self._level(k + 1).add(*_reduce_cells(values, offsets, FACTOR, level.size))

    def _constant(self, k: int, cells: int) -> None:
        """``cells`` cells of level ``k`` that hold only the fill value."""
        level = self._level(k)
        filled = np.full((1, 2), self.fill, self.dtype)
        zero = np.zeros((1, 2), np.int64)
        head = min(cells, (FACTOR - level.carried) % FACTOR)  # complete the group under way
        for _ in range(head):
            level.add(filled, zero)
        groups, rest = divmod(cells - head, FACTOR)
        if groups:
            level.emit_fill(groups * FACTOR)
            self._constant(k + 1, groups)
        for _ in range(rest):
            level.add(filled, zero)


Up = Callable[["_Level", np.ndarray, np.ndarray], None]


class _Level:
    """One level being written: its cells go to two ArrayWriters once there are MIN_CELLS of
    them (held until then: a level that never gets so many is not stored), and in whole
    groups of FACTOR to the next level."""

    def __init__(
        self, store: Store, path: str, size: int, dtype: np.dtype, fill: Any, up: Up
    ) -> None:
        self.store, self.path, self.size, self.dtype, self.fill = store, path, size, dtype, fill
        self.offset_dtype = np.dtype(
            "<u2" if size <= 1 << 16 else "<u4" if size <= 1 << 32 else "<u8"
        )
        self._up = up
        self.cells = 0
        self.carry: list[tuple[np.ndarray, np.ndarray]] = []  # < FACTOR cells for the next level
        self.carried = 0
        self._held: list[tuple[np.ndarray, np.ndarray] | int] = []  # arrays, or a fill count
        self._writers: tuple[ArrayWriter, ArrayWriter] | None = None

    def add(self, values: np.ndarray, offsets: np.ndarray) -> None:
        """Cells of this level, in order: ``values`` and ``offsets`` of shape (cells, 2)."""
        self._emit(values, offsets)
        i = 0
        if self.carried:
            i = min(FACTOR - self.carried, len(values))
            self.carry.append((values[:i], offsets[:i]))
            self.carried += i
            if self.carried < FACTOR:
                return
            self._up(self, *_joined(self.carry))
            self.carry, self.carried = [], 0
        whole = (len(values) - i) // FACTOR * FACTOR
        if whole:
            self._up(self, values[i : i + whole], offsets[i : i + whole])
        if i + whole < len(values):
            self.carry = [(values[i + whole :], offsets[i + whole :])]
            self.carried = len(values) - i - whole

    def last_cell(self) -> tuple[np.ndarray, np.ndarray]:
        """The carried cells (fewer than FACTOR: the array's end) as one cell of the next level."""
        values, offsets = _joined(self.carry)
        self.carry, self.carried = [], 0
        return _reduce_cells(values, offsets, len(values), self.size)

    def emit_fill(self, cells: int) -> None:
        """``cells`` cells of the fill value (whole groups: the caller passes them up)."""
        self.cells += cells
        if self._writers is not None:
            for writer in self._writers:
                writer.skip(cells)
            return
        self._held.append(cells)
        self._start()

    def _emit(self, values: np.ndarray, offsets: np.ndarray) -> None:
        self.cells += len(values)
        if self._writers is not None:
            self._writers[0].write(values)
            self._writers[1].write(offsets.astype(self.offset_dtype))
            return
        self._held.append((values, offsets))
        self._start()

    def _start(self) -> None:
        """Open the writers once the level has earned them, and hand them what was held."""
        if self.cells < MIN_CELLS:
            return
        self._writers = (
            ArrayWriter(
                self.store,
                f"{self.path}/values",
                (2,),
                self.dtype,
                fill=self.fill,
                chunk_bytes=CHUNK_BYTES,
            ),
            ArrayWriter(
                self.store, f"{self.path}/offsets", (2,), self.offset_dtype, chunk_bytes=CHUNK_BYTES
            ),
        )
        held, self._held = self._held, []
        for item in held:
            if isinstance(item, int):
                for writer in self._writers:
                    writer.skip(item)
            else:
                self._writers[0].write(item[0])
                self._writers[1].write(item[1].astype(self.offset_dtype))

    def close(self) -> None:
        if self._writers is not None:
            for writer in self._writers:
                writer.close()

    def abort(self) -> None:
        if self._writers is not None:
            for writer in self._writers:
                writer.abort()


def _joined(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    if len(parts) == 1:
        return parts[0]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _keys(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """What argmin and argmax compare: NaN made +inf for the minimum and -inf for the maximum,
    so that a gap is never an extreme (and an all-NaN span gives its first sample)."""
    if values.dtype.kind == "f":
        gaps = np.isnan(values)
        if gaps.any():
            return np.where(gaps, np.inf, values), np.where(gaps, -np.inf, values)
    return values, values


def _reduce_samples(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cells from ``samples`` of shape (cells, cell size): values and offsets, (cells, 2)."""
    low, high = _keys(samples)
    lo, hi = low.argmin(axis=1), high.argmax(axis=1)
    rows = np.arange(len(samples))
    values = np.stack([samples[rows, lo], samples[rows, hi]], axis=1)
    return values, np.stack([lo, hi], axis=1).astype(np.int64)


def _reduce_cells(
    values: np.ndarray, offsets: np.ndarray, group: int, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Cells of ``size`` samples, ``group`` at a time, made cells of ``group * size``."""
    low, high = _keys(values)
    low, high = low[:, 0].reshape(-1, group), high[:, 1].reshape(-1, group)
    lo, hi = low.argmin(axis=1), high.argmax(axis=1)
    rows = np.arange(len(low))
    pick_lo, pick_hi = rows * group + lo, rows * group + hi
    merged = np.stack([values[pick_lo, 0], values[pick_hi, 1]], axis=1)
    where = np.stack([lo * size + offsets[pick_lo, 0], hi * size + offsets[pick_hi, 1]], axis=1)
    return merged, where.astype(np.int64)


def _groups(path: str) -> list[str]:
    """The group nodes above a pyramid, from the run's ``pyramids`` down."""
    head, _, rest = path.partition("/pyramids/")
    parts = rest.split("/")[:-1]
    return [f"{head}/pyramids"] + [
        f"{head}/pyramids/{'/'.join(parts[: i + 1])}" for i in range(len(parts))
    ]


def levels(store: Store, path: str) -> list[int] | None:
    """The cell sizes of the levels of the pyramid of the array at ``path``, finest first;
    None if it has none (written before pyramids, or too short to need one)."""
    try:
        meta = stored_metadata(store, pyramid_path(path))
    except (FileNotFoundError, ValueError):
        return None
    info = meta.get("attributes", {}).get(KIND)
    return [int(n) for n in info["cells"]] if info else None


def preview(
    store: Store, path: str, start: int, stop: int, points: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """A min/max decimation of rows ``[start, stop)`` of the 1-D array at ``path`` to at most
    ``points`` samples, read from its pyramid: the sample indices kept (two per bucket, the
    minimum and the maximum, in the order they occur, as :func:`labledger.decimation.minmax`
    gives them) and their raw values. None when a plain read serves as well: the window holds
    ``points`` samples or fewer, or too few of the finest cells, or the array has no pyramid.

    The buckets are minmax's (``points // 2`` equal spans of the window) with each inner edge
    moved to the nearest cell edge of the coarsest level whose cells are no wider than a
    bucket (so by less than half a cell): each bucket's two samples are its true minimum and
    maximum, so no peak or dip of the window is lost, and where minmax's edges fall on cell
    edges the indices are minmax's exactly. The window's ends, if they cut a cell, are read
    from the array itself (less than a cell each)."""
    points = checked_points(points)
    if stop - start <= points:
        return None
    sizes = levels(store, path)
    buckets = points // 2
    width = (stop - start) / buckets
    usable = [(k, s) for k, s in enumerate(sizes or ()) if s <= width]
    if not usable:
        return None
    k, size = usable[-1]
    raw = open_array(store, path)
    length = raw.shape[0]
    first = -(-start // size)  # the cells wholly inside the window: [first, last)
    last = math.ceil(length / size) if stop == length else stop // size
    if first >= last:
        return None
    level = f"{pyramid_path(path)}/L{k + 1}"
    cell_values = np.asarray(open_array(store, f"{level}/values")[first:last])
    offsets = np.asarray(open_array(store, f"{level}/offsets")[first:last])
    where = offsets.astype(np.int64) + (np.arange(first, last, dtype=np.int64) * size)[:, None]
    pieces = [(cell_values, where)]
    edges = [np.arange(first, last, dtype=np.int64) * size]
    if start < first * size:  # the window's ends cut a cell: those samples, from the array
        head = np.asarray(raw[start : first * size])
        pieces.insert(0, _piece(head, start))
        edges.insert(0, np.array([start]))
    if last * size < stop:
        tail = np.asarray(raw[last * size : stop])
        pieces.append(_piece(tail, last * size))
        edges.append(np.array([last * size]))
    values = np.concatenate([p[0] for p in pieces])
    at = np.concatenate([p[1] for p in pieces])
    bounds = np.concatenate([*edges, [stop]])  # piece i spans [bounds[i], bounds[i + 1])
    return _bucketed(values, at, bounds, np.linspace(start, stop, buckets + 1))


def _piece(samples: np.ndarray, start: int) -> tuple[np.ndarray, np.ndarray]:
    """A few samples of the array made one piece (a cell, as the pyramid keeps them)."""
    values, offsets = _reduce_samples(samples.reshape(1, -1))
    return values, offsets + start


def _bucketed(
    values: np.ndarray, at: np.ndarray, bounds: np.ndarray, wanted: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Pieces (each a minimum and a maximum with their indices) gathered into buckets whose
    edges are the piece edges nearest to the ``wanted`` ones; per bucket its first minimum and
    first maximum, in order."""
    j = np.clip(np.searchsorted(bounds, wanted), 1, len(bounds) - 1)
    nearer = np.where(wanted - bounds[j - 1] <= bounds[j] - wanted, j - 1, j)
    starts = np.unique(nearer)[:-1]  # the piece each bucket begins with (the last edge: stop)
    low, high = _keys(values)
    low, high = low[:, 0], high[:, 1]
    picks = []
    for key, reduce in ((low, np.minimum), (high, np.maximum)):
        best = reduce.reduceat(key, starts)
        counts = np.diff(np.append(starts, len(key)))
        hits = np.flatnonzero(key == np.repeat(best, counts))
        picks.append(hits[np.searchsorted(hits, starts)])
    lo, hi = picks
    where = np.stack([at[lo, 0], at[hi, 1]], axis=1)
    kept = np.stack([values[lo, 0], values[hi, 1]], axis=1)
    order = np.argsort(where, axis=1, kind="stable")
    return np.take_along_axis(where, order, 1).ravel(), np.take_along_axis(kept, order, 1).ravel()
