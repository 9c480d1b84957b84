"""Chunked, compressed arrays in the store, in the Zarr v3 format with sharding.

A stored array is a Zarr v3 array that any Zarr v3 reader opens (zarr-python, tensorstore, zarrs):
numbers and times in chunks of about 1 MiB (blosc: lz4 with byte shuffle), gathered into shards
of about 64 MiB so that a run is a few objects rather than thousands; text in one uncompressed
chunk. The reasons and measurements are in docs/storage-format.md.

Arrays are written and read here directly (the layout is a few lines of the Zarr
specification) because zarr-python's general machinery costs 2-4x on the hot paths (a streamed
ingest, a 1 MiB slice) and about 10 ms per array on a NeXus file's hundreds of small ones. Only
what neither path knows (structured types) goes through zarr-python. The test-suite checks that
zarr-python reads everything written here.
"""

from __future__ import annotations

import json
import math
import threading
import warnings
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from typing import Any

import numpy as np
from numcodecs import CRC32C, Blosc, VLenUTF8

from labledger.errors import Damaged
from labledger.store.base import Buffer, Store
from labledger.store.dtypes import data_type, is_streamed, is_text, little, numpy_dtype

CHUNK_BYTES = 1 << 20
SHARD_BYTES = 64 << 20
_EMPTY = np.uint64(2**64 - 1)  # the index entry of a chunk that was never written
_ENCODE_AHEAD = 4  # chunks encoding in threads while the next ones are cut
_BLOSC = {"cname": "lz4", "clevel": 5, "shuffle": "shuffle", "blocksize": 0}
_SHUFFLE = {"noshuffle": Blosc.NOSHUFFLE, "shuffle": Blosc.SHUFFLE, "bitshuffle": Blosc.BITSHUFFLE}
_CRC = CRC32C()
_METADATA: dict[tuple[str, str], dict[str, Any]] = {}
_METADATA_KEPT = 10_000
_METADATA_LOCK = threading.Lock()
_SMALL_ARRAY = 1 << 20  # bytes decoded: read as one object, index and chunks together
_VLEN = VLenUTF8()
_encoders = ThreadPoolExecutor(max_workers=2, thread_name_prefix="labledger-encode")


def plan_chunks(row_shape: tuple[int, ...], itemsize: int, target: int = CHUNK_BYTES) -> list[int]:
    """The chunk shape for an array of rows of ``row_shape``: about ``target`` bytes, whole
    trailing dimensions where they fit, so that a slice along the first axis reads few chunks.

    >>> plan_chunks((), 2), plan_chunks((1024,), 8), plan_chunks((4096, 4096), 4)
    ([524288], [128, 1024], [1, 64, 4096])
    """
    chunk = [max(1, n) for n in row_shape]
    size = itemsize
    for i in reversed(range(len(row_shape))):
        if size * chunk[i] <= target:
            size *= chunk[i]
            continue
        chunk[i] = max(1, target // size)
        chunk[:i] = [1] * i
        return [1, *chunk]
    return [max(1, target // size), *chunk]


class ArrayWriter:
    """Streams an array into the store, rows along the first axis, in as many blocks as it likes.

    The length need not be known in advance: chunk and shard sizes shrink to fit an array that
    turns out short, and the metadata document is written last, on :meth:`close`. A chunk that
    holds only ``fill`` is never written, as Zarr does (``write_empty_chunks=False``): readers
    take a missing chunk for the fill value, so rows a source never wrote (:meth:`skip`) cost
    nothing, however many it declares.

    >>> import tempfile
    >>> from labledger.store import open_store
    >>> store = open_store(tempfile.mkdtemp())
    >>> with ArrayWriter(store, "x", (), "int16") as w:
    ...     w.write(np.arange(10, dtype="int16"))
    ...     w.write(np.arange(5, dtype="int16"))
    >>> open_array(store, "x")[8:12]
    array([8, 9, 0, 1], dtype=int16)
    """

    def __init__(
        self,
        store: Store,
        path: str,
        row_shape: tuple[int, ...],
        dtype: np.dtype | str,
        attrs: dict[str, Any] | None = None,
        *,
        fill: Any = None,
        chunk_bytes: int = CHUNK_BYTES,
        shard_bytes: int = SHARD_BYTES,
    ):
        dtype = np.dtype(dtype)
        if not is_streamed(dtype):
            raise TypeError(f"ArrayWriter takes numbers or times, not {dtype}; use write_array")
        self.store, self.path = store, path
        self.dtype = little(dtype)
        self.row_shape = tuple(int(n) for n in row_shape)
        self.attrs = attrs or {}
        self.fill = fill_value(self.dtype, fill)
        self.chunks = plan_chunks(self.row_shape, self.dtype.itemsize, chunk_bytes)
        # shards span whole trailing dimensions; along the first axis, `slabs_per_shard` chunks
        self.grid = [math.ceil(n / c) if n else 0 for n, c in zip(self.row_shape, self.chunks[1:])]
        slab_bytes = self.chunks[0] * math.prod(self.grid) * math.prod(self.chunks[1:])
        self.slabs_per_shard = max(1, shard_bytes // max(1, slab_bytes * self.dtype.itemsize))
        self.rows = 0
        self._buf = np.empty((0, *self.row_shape), self.dtype)  # grown by _room
        self._nbuf = 0
        self._slabs = 0  # slabs emitted in all
        self._shard: ExitStack | None = None
        self._shard_file: Any = None
        self._shard_index: np.ndarray | None = None
        self._shard_offset = 0
        self._pending: deque[tuple[Future[bytes], tuple[int, ...]]] = deque()
        self._blosc = _blosc(_BLOSC, self.dtype.itemsize)
        self.shards_written = 0  # none: the array holds only its fill value, stored as nothing
        self.closed = False

    def __enter__(self) -> ArrayWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def write(self, block: np.ndarray) -> None:
        """Append rows; ``block`` has shape ``(n, *row_shape)``."""
        block = np.asarray(block)
        if block.shape[1:] != self.row_shape:
            raise ValueError(
                f"{self.path}: block of shape {block.shape}, rows are {self.row_shape}"
            )
        if block.dtype != self.dtype:
            block = block.astype(self.dtype)
        c0, n, i = self.chunks[0], len(block), 0
        if self._nbuf:
            take = min(c0 - self._nbuf, n)
            self._room(self._nbuf + take)
            self._buf[self._nbuf : self._nbuf + take] = block[:take]
            self._nbuf += take
            i = take
            if self._nbuf == c0:
                self._emit(self._buf.copy())
                self._nbuf = 0
        while n - i >= c0:
            self._emit(block[i : i + c0])
            i += c0
        if i < n:
            self._room(n - i)
            self._buf[: n - i] = block[i:]
            self._nbuf = n - i
        self.rows += n
        self._drain(0)  # the caller may reuse its block once we return

    def skip(self, n: int) -> None:
        """Append ``n`` rows of the fill value: whole chunks of them are not even computed."""
        c0 = self.chunks[0]
        if self._nbuf:  # complete the chunk under way
            take = min(c0 - self._nbuf, n)
            self._room(self._nbuf + take)
            self._buf[self._nbuf : self._nbuf + take] = self.fill
            self._nbuf += take
            self.rows += take
            n -= take
            if self._nbuf < c0:
                return
            self._emit(self._buf.copy())
            self._nbuf = 0
        slabs, rest = divmod(n, c0)
        if slabs:
            self._drain(0)
            done = self.slabs_per_shard - self._slabs % self.slabs_per_shard
            if self._shard is not None and slabs >= done:  # the open shard ends among them
                self._finish_shard()
            self._slabs += slabs
            self.rows += slabs * c0
        if rest:
            self._room(rest)
            self._buf[:rest] = self.fill
            self._nbuf = rest
            self.rows += rest

    def close(self) -> None:
        """Write the last chunk and shard, then the metadata that makes the array readable."""
        if self.closed:
            return
        if self._nbuf:
            if self._slabs == 0:  # everything fits in one short chunk: shrink it to fit
                self.chunks[0] = self._nbuf
            self._emit(self._buf[: self._nbuf].copy(), last=True)
            self._nbuf = 0
        self._drain(0)
        if self._slabs < self.slabs_per_shard:  # a single short shard: declare no empty slots
            self.slabs_per_shard = max(1, self._slabs)
            if self._shard_index is not None:
                self._shard_index = self._shard_index[: self._slabs]
        self._finish_shard()
        shard = [self.chunks[0] * self.slabs_per_shard] + [
            g * c for g, c in zip(self.grid, self.chunks[1:])
        ]
        meta = array_metadata(
            (self.rows, *self.row_shape), self.dtype, self.chunks, shard, self.attrs, self.fill
        )
        _write_meta(self.store, self.path, meta)
        self.closed = True

    def abort(self) -> None:
        """Stop without publishing; the caller removes the objects written so far."""
        while self._pending:
            self._pending.popleft()[0].cancel()
        if self._shard is not None:
            self._shard.close()
            self._shard = self._shard_file = self._shard_index = None
        self.closed = True

    # -- inside --------------------------------------------------------------------------------

    def _room(self, rows: int) -> None:
        """Grow the buffer of the chunk under way to hold ``rows`` rows: a short array (one of
        a file's many thousands, say) never holds a whole chunk's worth of memory."""
        if rows > len(self._buf):
            size = min(self.chunks[0], max(rows, 2 * len(self._buf)))
            grown = np.empty((size, *self.row_shape), self.dtype)
            grown[: self._nbuf] = self._buf[: self._nbuf]
            self._buf = grown

    def _emit(self, slab: np.ndarray, last: bool = False) -> None:
        c0 = self.chunks[0]
        if len(slab) < c0:  # the last rows: pad the chunk to its full shape, as Zarr stores it
            full = np.full((c0, *self.row_shape), self.fill, self.dtype)
            full[: len(slab)] = slab
            slab = full
        slot = self._slabs % self.slabs_per_shard
        for coord in np.ndindex(*self.grid):
            sel = tuple(slice(j * c, (j + 1) * c) for j, c in zip(coord, self.chunks[1:]))
            piece = slab[(slice(None), *sel)]
            if _only(piece, self.fill):  # left out of the shard: read as the fill value
                continue
            if piece.shape[1:] != tuple(self.chunks[1:]):  # an edge along a trailing dimension
                full = np.full(self.chunks, self.fill, self.dtype)
                full[tuple(slice(0, n) for n in piece.shape)] = piece
                piece = full
            if self._shard_index is None:
                self._open_shard()
            data = _bytes_view(np.ascontiguousarray(piece))
            if last:  # nothing left to overlap with: a thread's hand-off would cost more
                encoded: Future[bytes] = Future()
                encoded.set_result(_encode_chunk(self._blosc, data))
            else:
                encoded = _encoders.submit(_encode_chunk, self._blosc, data)
            self._pending.append((encoded, (slot, *coord)))
            self._drain(_ENCODE_AHEAD)
        self._slabs += 1
        if self._slabs % self.slabs_per_shard == 0:
            self._drain(0)
            self._finish_shard()

    def _drain(self, keep: int) -> None:
        while len(self._pending) > keep:
            future, where = self._pending.popleft()
            data = future.result()
            self._shard_file.write(data)
            assert self._shard_index is not None
            self._shard_index[where] = (self._shard_offset, len(data))
            self._shard_offset += len(data)

    def _open_shard(self) -> None:
        shard_no = self._slabs // self.slabs_per_shard
        self.shards_written += 1
        key = _chunk_key(self.path, (shard_no,) + (0,) * len(self.row_shape))
        self._shard = ExitStack()
        self._shard_file = self._shard.enter_context(self.store.open_write(key))
        self._shard_index = np.full((self.slabs_per_shard, *self.grid, 2), _EMPTY, "<u8")
        self._shard_offset = 0

    def _finish_shard(self) -> None:
        if self._shard is None or self._shard_index is None:
            return
        self._shard_file.write(_CRC.encode(self._shard_index.tobytes()))
        self._shard.close()
        self._shard = self._shard_file = self._shard_index = None


def array_metadata(
    shape: tuple[int, ...],
    dtype: np.dtype,
    chunks: list[int],
    shard: list[int],
    attrs: dict[str, Any],
    fill: Any = None,
) -> dict[str, Any]:
    """The Zarr v3 ``zarr.json`` of a sharded array as :class:`ArrayWriter` writes it."""
    little_endian = {"name": "bytes", "configuration": {"endian": "little"}}
    blosc = {"name": "blosc", "configuration": {"typesize": dtype.itemsize, **_BLOSC}}
    return _metadata(
        shape,
        dtype,
        shard,
        [
            {
                "name": "sharding_indexed",
                "configuration": {
                    "chunk_shape": chunks,
                    "codecs": [little_endian, blosc, {"name": "crc32c"}],
                    "index_codecs": [little_endian, {"name": "crc32c"}],
                    "index_location": "end",
                },
            }
        ],
        attrs,
        fill,
    )


def _metadata(
    shape: tuple[int, ...],
    dtype: np.dtype,
    chunk_shape: list[int],
    codecs: list[dict[str, Any]],
    attrs: dict[str, Any],
    fill_value: Any = None,
) -> dict[str, Any]:
    spec, fill = data_type(dtype)
    if fill_value is not None:
        fill = fill_json(dtype, fill_value)
    return {
        "zarr_format": 3,
        "node_type": "array",
        "shape": list(shape),
        "data_type": spec,
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": chunk_shape}},
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
        "fill_value": fill,
        "codecs": codecs,
        "attributes": attrs,
    }


def _write_meta(store: Store, path: str, meta: dict[str, Any]) -> None:
    store.write(f"{path}/zarr.json" if path else "zarr.json", json.dumps(meta, indent=1).encode())


def fill_value(dtype: np.dtype, fill: Any) -> Any:
    """The NumPy scalar of ``dtype`` that stands for what was never written: ``fill``, or
    Zarr's default (zero, false, not-a-time).

    >>> fill_value(np.dtype("<f8"), None), fill_value(np.dtype("<i2"), 7)
    (np.float64(0.0), np.int16(7))
    """
    if fill is None:
        return np.array(np.datetime64("NaT"), dtype)[()] if dtype.kind == "M" else dtype.type(0)
    return np.array(fill, dtype)[()]


def fill_json(dtype: np.dtype, fill: Any) -> Any:
    """A fill value as Zarr v3 spells it in ``zarr.json``: non-finite floats as "NaN",
    "Infinity", "-Infinity"; a time as its int64 count; a complex number as [real, imaginary].

    >>> fill_json(np.dtype("<f4"), float("nan")), fill_json(np.dtype("<i8"), -1)
    ('NaN', -1)
    """
    value = np.array(fill, dtype)[()]
    if dtype.kind == "M":
        return int(value.view(np.int64))
    if dtype.kind == "c":
        return [_float_json(value.real), _float_json(value.imag)]
    if dtype.kind == "f":
        return _float_json(value)
    return value.item()


def _float_json(value: Any) -> Any:
    value = float(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def _fill_from_json(dtype: np.dtype, spelled: Any) -> Any:
    """The NumPy scalar a ``zarr.json`` fill value stands for (:func:`fill_json` backwards)."""
    if dtype.kind == "M":
        return np.array(spelled, np.int64).view(dtype)[()]
    if dtype.kind == "c":
        return dtype.type(complex(float(spelled[0]), float(spelled[1])))
    if dtype.kind == "f":
        return dtype.type(float(spelled))  # float() reads "NaN", "Infinity", "-Infinity"
    return dtype.type(spelled)


def _only(piece: np.ndarray, fill: Any) -> bool:
    """Whether a chunk holds nothing but ``fill`` (NaN counting as equal to a NaN fill); its
    first value settles almost every chunk of real data at once."""
    flat = piece.reshape(-1)
    if flat.dtype.kind == "M":
        flat, fill = flat.view(np.int64), np.array(fill).view(np.int64)[()]
    if flat.dtype.kind in "fc" and np.isnan(fill):
        return bool(np.isnan(flat[0])) and bool(np.isnan(flat).all())
    return bool(flat[0] == fill) and bool((flat == fill).all())


def _bytes_view(data: np.ndarray) -> np.ndarray:
    """Times go through the codecs as their int64 counts."""
    return data.view(np.int64) if data.dtype.kind == "M" else data


def _encode_chunk(blosc: Blosc, data: Any) -> bytes:
    """A chunk as stored: compressed, then its crc32c, so that any changed byte is found when
    it is read (blosc alone decodes many damaged chunks into wrong values without a word)."""
    return bytes(_CRC.encode(blosc.encode(data)))


def _blosc(config: dict[str, Any], typesize: int) -> Blosc:
    return Blosc(
        cname=config["cname"],
        clevel=config["clevel"],
        shuffle=_SHUFFLE[config["shuffle"]] if typesize > 1 else Blosc.NOSHUFFLE,
        blocksize=config.get("blocksize", 0),
    )


def _chunk_key(path: str, coords: tuple[int, ...]) -> str:
    """Zarr v3's default chunk key: ``c/1/0`` for chunk (1, 0), plain ``c`` for a 0-d array."""
    return "/".join([path, "c", *map(str, coords)])


def write_array(
    store: Store, path: str, data: np.ndarray | Any, attrs: dict[str, Any] | None = None
) -> None:
    """Store a whole array that is already in memory.

    >>> import tempfile
    >>> from labledger.store import open_store
    >>> store = open_store(tempfile.mkdtemp())
    >>> write_array(store, "s", np.array([b"x-ray"], dtype="S5"))
    >>> open_array(store, "s")[0]
    np.bytes_(b'x-ray')
    """
    data = np.asarray(data)
    attrs = attrs or {}
    if is_streamed(data.dtype) and data.ndim:
        with ArrayWriter(store, path, data.shape[1:], data.dtype, attrs) as w:
            w.write(data)
    elif is_streamed(data.dtype):  # 0-d: its one chunk has an empty shape
        dtype = little(data.dtype)
        blosc = _blosc(_BLOSC, dtype.itemsize)
        blob = _encode_chunk(blosc, _bytes_view(np.ascontiguousarray(data, dtype)))
        index = np.array([0, len(blob)], "<u8").tobytes()
        store.write(_chunk_key(path, ()), blob + bytes(_CRC.encode(index)))
        _write_meta(store, path, array_metadata((), dtype, [], [], attrs))
    elif is_text(data.dtype):
        TextArray.write(store, path, data, attrs)
    else:
        import zarr

        with warnings.catch_warnings():  # structured types are a zarr-python extension
            warnings.simplefilter("ignore")
            zarr.create_array(store.zarr_store(), name=path, data=data, attributes=attrs)


def write_group(store: Store, path: str, attrs: dict[str, Any] | None = None) -> None:
    """A Zarr v3 group node: the folders of the stored tree, with the source's attributes."""
    _write_meta(store, path, {"zarr_format": 3, "node_type": "group", "attributes": attrs or {}})


class _Array:
    """What every stored array offers besides slicing: NumPy's shape vocabulary."""

    path: str
    shape: tuple[int, ...]
    dtype: np.dtype
    attrs: dict[str, Any]
    chunks: tuple[int, ...]

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d array")
        return self.shape[0]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.path} shape={self.shape} dtype={self.dtype}>"

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = np.asarray(self[...])
        return out if dtype is None else out.astype(dtype)

    def __getitem__(self, selection: Any) -> Any:
        raise NotImplementedError

    def iter_blocks(self) -> Iterator[Any]:
        """The array in pieces along its first axis, each a stored unit (a shard, or all)."""
        yield self[...]


class StoredArray(_Array):
    """A sharded array in the store, read chunk by chunk: a slice fetches only the chunks it
    touches (concurrently, on an object store) and decodes them straight into the result."""

    def __init__(self, store: Store, path: str, meta: dict[str, Any]):
        self.store, self.path = store, path
        self.shape: tuple[int, ...] = tuple(meta["shape"])
        self.dtype: np.dtype = numpy_dtype(meta["data_type"])  # type: ignore[assignment]
        self.attrs: dict[str, Any] = meta.get("attributes", {})
        self.fill = _fill_from_json(self.dtype, meta["fill_value"])
        sharding = meta["codecs"][0]["configuration"]
        self.shards: tuple[int, ...] = tuple(meta["chunk_grid"]["configuration"]["chunk_shape"])
        self.chunks: tuple[int, ...] = tuple(sharding["chunk_shape"])
        self._per_shard = tuple(s // c for s, c in zip(self.shards, self.chunks))
        self._blosc = _blosc(sharding["codecs"][1]["configuration"], self.dtype.itemsize)
        self._checksummed = len(sharding["codecs"]) == 3  # arrays written before: no crc32c
        self._index: dict[tuple[int, ...], np.ndarray | None] = {}
        # a small array (one chunk's worth) is one small shard: fetch it whole, in one request,
        # rather than its index and then its chunk (half the round trips, on S3 as on disk)
        self._small = math.prod(self.shape) * self.dtype.itemsize <= _SMALL_ARRAY
        self._whole: dict[tuple[int, ...], Buffer] = {}

    def __getitem__(self, selection: Any) -> Any:
        starts, stops, local, squeeze = _normalize(selection, self.shape)
        out = np.full([b - a for a, b in zip(starts, stops)], self.fill, self.dtype)
        if out.size:
            self._fill(out, starts, stops)
        result = out[local] if local else out
        if squeeze:
            result = result.reshape([n for n, s in zip(result.shape, squeeze) if not s])
        return result if result.ndim else result[()]

    def _fill(self, out: np.ndarray, starts: list[int], stops: list[int]) -> None:
        if not self.shape:
            coords: list[tuple[int, ...]] = [()]
        else:
            ranges = [
                range(a // c, (b - 1) // c + 1) for a, b, c in zip(starts, stops, self.chunks)
            ]
            coords = list(np.ndindex(*[len(r) for r in ranges]))
            coords = [tuple(r[i] for r, i in zip(ranges, co)) for co in coords]
        located = self._locate(coords)
        wanted = [(coord, key, off, nb) for coord, (key, off, nb) in zip(coords, located) if key]
        if self._whole:
            whole = [self._whole[self._shard_of(coord)] for coord, *_ in wanted]
            blobs: list[Buffer] = [
                memoryview(w)[off : off + nb] for w, (_, _, off, nb) in zip(whole, wanted)
            ]
        else:
            blobs = self.store.read_ranges([(key, off, off + nb) for _, key, off, nb in wanted])
        chunk_size = math.prod(self.chunks)
        scratch = np.empty(chunk_size, self.dtype)
        for (coord, *_), blob in zip(wanted, blobs):
            if self._checksummed:
                blob = self._verified(blob, coord)
            lo = [c * n for c, n in zip(coord, self.chunks)]
            src = tuple(
                slice(max(a, c) - c, min(b, c + n) - c)
                for a, b, c, n in zip(starts, stops, lo, self.chunks)
            )
            dst = tuple(slice(s.start + c - a, s.stop + c - a) for s, c, a in zip(src, lo, starts))
            target = out[dst] if dst else out[...]
            if target.shape == tuple(self.chunks) and target.flags.c_contiguous:
                self._blosc.decode(blob, out=_bytes_view(target))  # the chunk lands in place
            else:
                self._blosc.decode(blob, out=_bytes_view(scratch))
                target[...] = scratch.reshape(self.chunks)[src]

    def _verified(self, blob: Any, coord: tuple[int, ...]) -> Any:
        try:
            return _CRC.decode(blob)
        except RuntimeError:
            raise Damaged(
                f"{self.path}: chunk {coord} is damaged (its bytes no longer match their "
                "crc32c); `labledger check` lists what else is"
            ) from None

    def _shard_index(self, blob: Any, shard: tuple[int, ...]) -> np.ndarray:
        try:
            index = _CRC.decode(blob)
        except (RuntimeError, ValueError):  # a changed byte, or a shard cut short
            raise Damaged(
                f"{self.path}: the index of shard {shard} is damaged (its bytes no longer match "
                "their crc32c); `labledger check` lists what else is"
            ) from None
        return np.frombuffer(index, "<u8").reshape(*self._per_shard, 2)

    def _locate(self, coords: list[tuple[int, ...]]) -> list[tuple[str | None, int, int]]:
        """Where each chunk's bytes are: (shard key, offset, length), or no key if never written."""
        shard_of = [self._shard_of(co) for co in coords]
        missing = sorted({s for s in shard_of if s not in self._index})
        if missing:
            n_index = 16 * math.prod(self._per_shard) + 4
            keys = [_chunk_key(self.path, s) for s in missing]
            start = 0 if self._small else -n_index  # the whole object, or its index
            blobs: Sequence[Buffer | None]
            try:
                blobs = self.store.read_ranges([(k, start, None) for k in keys])
            except FileNotFoundError:  # some shard never written: fetch one by one
                blobs = [self._maybe_read_tail(k, start) for k in keys]
            for s, blob in zip(missing, blobs):
                if blob is not None and self._small:
                    self._whole[s] = blob
                    blob = memoryview(blob)[-n_index:]
                self._index[s] = None if blob is None else self._shard_index(blob, s)
        found: list[tuple[str | None, int, int]] = []
        for co, s in zip(coords, shard_of):
            index = self._index[s]
            if index is None:
                found.append((None, 0, 0))
                continue
            off, nb = index[tuple(c % p for c, p in zip(co, self._per_shard))]
            key = _chunk_key(self.path, s)
            found.append((None, 0, 0) if off == _EMPTY else (key, int(off), int(nb)))
        return found

    def _shard_of(self, coord: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(c // p for c, p in zip(coord, self._per_shard))

    def _maybe_read_tail(self, key: str, start: int) -> bytes | None:
        try:
            return self.store.read_range(key, start, None)
        except FileNotFoundError:
            return None

    def iter_blocks(self) -> Iterator[np.ndarray]:
        if not self.shape:
            yield self[()]
            return
        for i in range(0, self.shape[0], self.shards[0]):
            yield self[i : i + self.shards[0]]

    def written_rows(self) -> Iterator[tuple[int, int]]:
        """The ``(start, stop)`` rows of each shard that holds anything: the rest was never
        written and reads as the fill value (a file's unwritten chunks cost nothing here).

        >>> import tempfile
        >>> from labledger.store import open_store
        >>> store = open_store(tempfile.mkdtemp())
        >>> with ArrayWriter(store, "a", (), np.dtype("f8"), {}, fill=np.nan) as w:
        ...     w.write(np.full(3_000_000, np.nan))
        >>> list(open_array(store, "a").written_rows())
        []
        """
        tail = (0,) * (len(self.shape) - 1)  # a shard spans whole trailing dimensions
        for n, start in enumerate(range(0, self.shape[0] if self.shape else 0, self.shards[0])):
            if self.store.exists(_chunk_key(self.path, (n, *tail))):
                yield start, min(self.shape[0], start + self.shards[0])


class TextArray(_Array):
    """Text in one uncompressed chunk: fixed-length bytes (as HDF5 and NeXus write them) or
    variable-length UTF-8, spelled as zarr-python spells them."""

    def __init__(self, store: Store, path: str, meta: dict[str, Any]):
        self.store, self.path = store, path
        self.shape: tuple[int, ...] = tuple(meta["shape"])
        self.dtype: np.dtype = numpy_dtype(meta["data_type"])  # type: ignore[assignment]
        self.attrs: dict[str, Any] = meta.get("attributes", {})
        self.chunks = self.shape
        self._values: np.ndarray | None = None

    @staticmethod
    def write(store: Store, path: str, data: np.ndarray, attrs: dict[str, Any]) -> None:
        if data.dtype.kind == "S":
            codecs: list[dict[str, Any]] = [{"name": "bytes"}]
            blob = np.ascontiguousarray(data).tobytes()
        else:
            codecs = [{"name": "vlen-utf8", "configuration": {}}]
            texts = np.array([_str(v) for v in data.ravel()], dtype=object)
            blob = bytes(_VLEN.encode(texts))
        chunk = [max(1, n) for n in data.shape]
        if data.size:
            store.write(_chunk_key(path, (0,) * data.ndim), blob)
        _write_meta(store, path, _metadata(data.shape, data.dtype, chunk, codecs, attrs))

    def _all(self) -> np.ndarray:
        if self._values is None:
            key = _chunk_key(self.path, (0,) * self.ndim)
            blob = self.store.read(key) if self.size else b""
            if self.dtype.kind == "S":
                values = np.frombuffer(blob, self.dtype) if self.size else np.zeros(0, self.dtype)
            else:
                values = _VLEN.decode(blob) if self.size else np.zeros(0, object)
                if hasattr(np.dtypes, "StringDType"):  # as zarr-python hands them out
                    values = values.astype(np.dtypes.StringDType())
            self._values = values.reshape(self.shape)
        return self._values

    def __getitem__(self, selection: Any) -> Any:
        return self._all()[selection]


def _str(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8")  # readers hand over text; raw bytes here must be UTF-8
    return "" if value is None else str(value)


class ZarrArray(_Array):
    """An array read by zarr-python: structured types, and arrays labledger did not write."""

    def __init__(self, path: str, array: Any):
        self._array = array
        self.path = path
        self.shape: tuple[int, ...] = tuple(array.shape)
        self.dtype: np.dtype = np.dtype(array.dtype)
        self.attrs: dict[str, Any] = dict(array.attrs)
        self.chunks: tuple[int, ...] = tuple(array.chunks)

    def __getitem__(self, selection: Any) -> Any:
        return self._array[selection]


AnyArray = StoredArray | TextArray | ZarrArray


def open_array(store: Store, path: str) -> AnyArray:
    """The array stored at ``path``, by the fastest reader that understands its layout."""
    return array_of(store, path, stored_metadata(store, path))


def array_of(store: Store, path: str, meta: dict[str, Any]) -> AnyArray:
    """The array at ``path`` whose ``zarr.json`` is ``meta`` (read by the caller: a check
    reads it afresh, where :func:`open_array` remembers it)."""
    layout = _layout(meta)
    if layout == "sharded":
        return StoredArray(store, path, meta)
    if layout == "text":
        return TextArray(store, path, meta)
    import zarr

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ZarrArray(path, zarr.open_array(store.zarr_store(), path=path, mode="r"))


def stored_metadata(store: Store, path: str) -> dict[str, Any]:
    """A node's ``zarr.json`` (an array's or a group's), remembered: a run's arrays never
    change once written, and their paths hold the run's unique id, so a path read once is known
    for good. A node that is not there raises ``FileNotFoundError`` (and is not remembered)."""
    key = (store.url, path)
    meta = _METADATA.get(key)
    if meta is None:
        meta = json.loads(store.read(f"{path}/zarr.json"))
        with _METADATA_LOCK:  # readers in threads (la.signals) evict concurrently
            if len(_METADATA) >= _METADATA_KEPT:
                _METADATA.pop(next(iter(_METADATA)))  # oldest first: dicts keep their order
            _METADATA[key] = meta
    return meta


def _layout(meta: dict[str, Any]) -> str | None:
    """Which of this module's readers an array's metadata fits exactly ("sharded", "text"), or
    None: anything else (another fill value, key encoding, codec...) is zarr-python's to read."""
    dtype = numpy_dtype(meta.get("data_type"))
    if dtype is None or meta.get("chunk_grid", {}).get("name") != "regular":
        return None
    if meta.get("chunk_key_encoding") != {"name": "default", "configuration": {"separator": "/"}}:
        return None
    if meta.get("storage_transformers"):
        return None
    codecs = meta.get("codecs", [])
    names = [c.get("name") for c in codecs]
    if names == ["sharding_indexed"]:  # any fill value: missing chunks are read as it
        try:
            _fill_from_json(dtype, meta.get("fill_value"))
        except (TypeError, ValueError, IndexError):
            return None
        conf = codecs[0]["configuration"]
        inner, index = conf["codecs"], conf["index_codecs"]
        if (
            [c["name"] for c in inner] in (["bytes", "blosc"], ["bytes", "blosc", "crc32c"])
            and [c["name"] for c in index] == ["bytes", "crc32c"]
            and conf.get("index_location", "end") == "end"
            and inner[0].get("configuration", {}).get("endian", "little") == "little"
            and index[0].get("configuration", {}).get("endian", "little") == "little"
        ):
            return "sharded"
        return None
    if meta.get("fill_value") != data_type(dtype)[1]:
        return None
    whole = meta["chunk_grid"]["configuration"]["chunk_shape"] == [max(1, n) for n in meta["shape"]]
    if is_text(dtype) and whole and names in (["bytes"], ["vlen-utf8"]):
        return "text"
    return None


def _normalize(
    selection: Any, shape: tuple[int, ...]
) -> tuple[list[int], list[int], tuple[slice, ...], list[bool]]:
    """Turn ints, slices and Ellipsis into the bounding box to read, the slice to take from it,
    and which axes an integer index removes."""
    sel = selection if isinstance(selection, tuple) else (selection,)
    ellipses = [i for i, s in enumerate(sel) if s is Ellipsis]
    if len(ellipses) > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    if ellipses:
        i = ellipses[0]
        sel = sel[:i] + (slice(None),) * (len(shape) - len(sel) + 1) + sel[i + 1 :]
    if len(sel) > len(shape):
        raise IndexError(f"too many indices: {len(sel)} for an array of {len(shape)} dimensions")
    sel = sel + (slice(None),) * (len(shape) - len(sel))
    starts, stops, local, squeeze = [], [], [], []
    for s, n in zip(sel, shape):
        if isinstance(s, (int, np.integer)) and not isinstance(s, bool):
            i = int(s) + n if s < 0 else int(s)
            if not 0 <= i < n:
                raise IndexError(f"index {int(s)} is out of bounds for an axis of length {n}")
            starts.append(i)
            stops.append(i + 1)
            local.append(slice(None))
            squeeze.append(True)
        elif isinstance(s, slice):
            r = range(*s.indices(n))
            lo, hi = (min(r[0], r[-1]), max(r[0], r[-1]) + 1) if len(r) else (0, 0)
            starts.append(lo)
            stops.append(hi)
            squeeze.append(False)
            stop = r.stop - lo if r.stop - lo >= 0 else None
            local.append(slice(r.start - lo, stop, r.step) if len(r) else slice(0, 0))
        else:
            raise IndexError(
                f"index with integers and slices, not {type(s).__name__}; "
                "for other selections read a slice and index the NumPy array"
            )
    trivial = all(sl == slice(None) for sl in local)
    return starts, stops, () if trivial else tuple(local), squeeze
