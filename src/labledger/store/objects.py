"""One narrow interface to where bytes live: a local folder or an object store, through fsspec.

Everything labledger keeps (raw files, array chunks, metadata documents) is an object named by a
key such as ``runs/<id>/data/zarr.json`` below one root URL. Local folders and ``s3://`` go
through the same methods; only durability differs: an object store makes a write durable when it
acknowledges it, a local disk needs fsync, which :meth:`ObjectStore.persist` does.
"""

from __future__ import annotations

import ctypes
import functools
import os
import posixpath
import shutil
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import fsspec
from fsspec.implementations.local import LocalFileSystem
from fsspec.utils import merge_offset_ranges

from labledger.errors import StoreUnavailable

Buffer = bytes | memoryview  # what a range read hands back: a view where a merged read held it
_MERGE_GAP = 256 << 10  # on an object store a request costs more than a few hundred kB
_MERGE_BLOCK = 16 << 20  # but one huge request would forgo fetching parts concurrently
_COPY_BLOCK = 64 << 20
_SYNC_FILE_RANGE_WRITE = 2


class ObjectStore:
    """Named byte objects below one root URL (a folder path, ``file://``, ``s3://bucket/prefix``).

    >>> import tempfile
    >>> store = ObjectStore(tempfile.mkdtemp())
    >>> store.write("a/b.txt", b"hello")
    >>> store.read("a/b.txt"), store.read_range("a/b.txt", 1, 3), store.list("a")
    (b'hello', b'el', ['a/b.txt'])
    """

    def __init__(self, url: str | os.PathLike[str], storage_options: dict[str, Any] | None = None):
        url = os.fspath(url)
        self.storage_options = dict(storage_options or {})
        try:
            fs, root = fsspec.core.url_to_fs(url, **self.storage_options)
        except (ImportError, ValueError) as exc:
            raise StoreUnavailable(f"store {url}: {exc}") from None
        self.fs: fsspec.AbstractFileSystem = fs
        self.is_local = isinstance(fs, LocalFileSystem)
        self.root = str(Path(root).resolve()) if self.is_local else root.rstrip("/")
        self.url = self.root if self.is_local else url.rstrip("/")

    def __repr__(self) -> str:
        return f"ObjectStore({self.url!r})"

    def path(self, key: str) -> str:
        """The filesystem path of ``key`` (what fsspec calls the object)."""
        return posixpath.join(self.root, key) if key else self.root

    # -- reading -------------------------------------------------------------------------------

    def read(self, key: str) -> bytes:
        return self.fs.cat_file(self.path(key))

    def read_range(self, key: str, start: int, end: int | None) -> bytes:
        """Bytes ``[start, end)`` of an object; a negative ``start`` counts from its end."""
        if self.is_local:  # one pread: fsspec's local file object costs more than the read
            return _pread(self.path(key), start, end)
        return self.fs.cat_file(self.path(key), start=start, end=end)

    def read_ranges(self, ranges: Sequence[tuple[str, int, int | None]]) -> list[Buffer]:
        """Many byte ranges at once: neighbours are merged into one request, and an object
        store fetches the requests concurrently. A negative start counts from the end."""
        if not ranges:
            return []
        is_tail = [start < 0 or end is None for _, start, end in ranges]
        tails = [i for i, tail in enumerate(is_tail) if tail]
        spans = [i for i, tail in enumerate(is_tail) if not tail]
        found: list[Buffer] = [b""] * len(ranges)
        for i, blob in zip(tails, self._fetch([ranges[i] for i in tails])):
            found[i] = blob
        if spans:
            keys, starts, ends = merge_offset_ranges(
                [ranges[i][0] for i in spans],
                [ranges[i][1] for i in spans],
                [ranges[i][2] for i in spans],
                max_gap=0 if self.is_local else _MERGE_GAP,
                max_block=_MERGE_BLOCK,
            )
            blocks: dict[str, list[tuple[int, int, bytes]]] = {}
            merged = list(zip(keys, starts, ends, strict=True))
            for (key, start, end), blob in zip(merged, self._fetch(merged)):
                blocks.setdefault(key, []).append((start, end, blob))
            for i in spans:
                key, start, end = ranges[i]
                for first, last, blob in blocks[key]:
                    if first <= start and end <= last:  # type: ignore[operator]
                        whole = first == start and end == last
                        found[i] = blob if whole else memoryview(blob)[start - first : end - first]  # type: ignore[operator]
                        break
        return found

    def _fetch(self, ranges: Sequence[tuple[str, int, int | None]]) -> list[bytes]:
        if not ranges:
            return []
        if self.is_local:  # fsspec's local cat_ranges opens a file per range; pread is cheaper
            return [_pread(self.path(k), s, e) for k, s, e in ranges]
        keys, starts, ends = zip(*ranges, strict=True)
        paths = [self.path(k) for k in keys]
        return self.fs.cat_ranges(paths, list(starts), list(ends), on_error="raise")

    def open_read(self, key: str) -> IO[bytes]:
        return self.fs.open(self.path(key), "rb")

    def exists(self, key: str) -> bool:
        return self.fs.exists(self.path(key))

    def list(self, prefix: str = "") -> list[str]:
        """Every key below ``prefix``, sorted."""
        base = self.path(prefix)
        try:
            found = self.fs.find(base)
        except FileNotFoundError:
            return []
        cut = len(self.root) + 1
        return sorted(p[cut:] if p.startswith(self.root) else p for p in found)

    def children(self, prefix: str) -> list[str]:
        """The keys of the objects and folders right below ``prefix``, sorted; read afresh
        (other processes write here too)."""
        base = self.path(prefix)
        self.fs.invalidate_cache(base)
        try:
            found = self.fs.ls(base, detail=False)
        except FileNotFoundError:
            return []
        return sorted(f"{prefix}/{posixpath.basename(p.rstrip('/'))}" for p in found)

    def usage(self, prefix: str) -> tuple[int, float | None]:
        """The bytes of the objects below ``prefix`` and when the newest of them was written
        (Unix seconds; None if there is none), read afresh."""
        base = self.path(prefix)
        self.fs.invalidate_cache(base)
        try:
            found = self.fs.find(base, detail=True)
        except FileNotFoundError:
            return 0, None
        size, newest = 0, None
        for info in found.values():
            size += int(info.get("size") or 0)
            when = info.get("mtime", info.get("LastModified"))  # a folder's, an object store's
            if isinstance(when, datetime):
                when = when.timestamp()
            if when is not None:
                newest = max(newest or 0.0, float(when))
        return size, newest

    # -- writing -------------------------------------------------------------------------------

    def write(self, key: str, data: bytes) -> None:
        with self.open_write(key) as f:
            f.write(data)

    @contextmanager
    def open_write(self, key: str) -> Iterator[IO[bytes]]:
        """A file to stream an object into; on an object store it appears only once closed."""
        path = self.path(key)
        if self.is_local:  # plain files: fsspec's wrapper costs more than the write itself
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as local:
                yield local
                local.flush()
                _start_writeback(local.fileno())
            return
        with self.fs.open(path, "wb") as f:
            yield f

    def put_file(self, path: str | os.PathLike[str], key: str) -> None:
        """Keep a local file byte for byte as ``key``."""
        with open(path, "rb") as src, self.open_write(key) as dst:
            if self.is_local and hasattr(os, "copy_file_range"):
                # the kernel copies, as cp does (and clones, on filesystems that can)
                offset, size = 0, os.fstat(src.fileno()).st_size
                while offset < size:
                    step = min(size - offset, _COPY_BLOCK)
                    offset += os.copy_file_range(src.fileno(), dst.fileno(), step)
                    _start_writeback(dst.fileno())
                return
            shutil.copyfileobj(src, dst, _COPY_BLOCK)

    def delete(self, prefix: str) -> None:
        """Remove ``prefix`` and everything below it; nothing there is not an error."""
        path = self.path(prefix)
        if self.fs.exists(path):
            self.fs.rm(path, recursive=True)

    def persist(self, prefix: str) -> None:
        """Make everything written below ``prefix`` durable before anything refers to it.

        Object stores are durable on acknowledgement; a local folder needs each file and each
        directory entry flushed, up to the store's root, or a power cut could lose them after the
        catalog already points at them.
        """
        if not self.is_local:
            return
        top = Path(self.path(prefix))
        if _syncfs(top):
            return
        if top.is_file():
            _fsync(top)
        else:
            for dirpath, _dirs, files in os.walk(top):
                for name in files:
                    _fsync(Path(dirpath, name))
                _fsync(Path(dirpath))
        root = Path(self.root)
        for parent in top.parents:
            _fsync(parent)
            if parent == root:
                break

    def check_writable(self) -> None:
        """Fail early, with the reason, if objects cannot be written here."""
        try:
            self.fs.makedirs(self.root, exist_ok=True)
            probe = ".labledger-write-probe"
            self.write(probe, b"")
            self.delete(probe)
        except (OSError, PermissionError) as exc:
            raise StoreUnavailable(f"store {self.url} is not writable: {exc}") from None

    def zarr_store(self) -> Any:
        """The same root as a zarr-python store, for the arrays zarr-python writes and reads."""
        from zarr.storage import FsspecStore, LocalStore

        if self.is_local:
            return LocalStore(self.root)
        return FsspecStore.from_url(self.url, storage_options=self.storage_options)


def _pread(path: str, start: int, end: int | None) -> bytes:
    fd = os.open(path, os.O_RDONLY)
    try:
        if start < 0 or end is None:
            size = os.fstat(fd).st_size
            start = max(0, size + start) if start < 0 else start
            end = size if end is None else end
        return os.pread(fd, max(0, end - start), start)
    finally:
        os.close(fd)


def _start_writeback(fd: int) -> None:
    """Ask the kernel to start writing a file's dirty pages now, without waiting (Linux), so
    that the fsync before the catalog commit finds little left to write."""
    libc = _libc()
    if libc is not None and hasattr(libc, "sync_file_range"):
        libc.sync_file_range(fd, ctypes.c_int64(0), ctypes.c_int64(0), _SYNC_FILE_RANGE_WRITE)


def _syncfs(path: Path) -> bool:
    """Flush the whole filesystem holding ``path`` in one call (Linux): far cheaper than an
    fsync per file for the hundreds of small objects of a NeXus file."""
    libc = _libc()
    if libc is None or not hasattr(libc, "syncfs"):
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        return libc.syncfs(fd) == 0
    finally:
        os.close(fd)


@functools.cache
def _libc() -> Any:
    if sys.platform != "linux":
        return None
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
