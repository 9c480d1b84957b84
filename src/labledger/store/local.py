"""A store in a folder of this machine, with the fast paths of a local disk: one ``pread`` per
range, plain files to write, the kernel's ``copy_file_range`` to copy, ``syncfs`` to persist."""

from __future__ import annotations

import ctypes
import functools
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from fsspec.implementations.local import LocalFileSystem

from labledger.store.base import COPY_BLOCK, Range, Store

_SYNC_FILE_RANGE_WRITE = 2


class LocalStore(Store):
    """The objects of a folder, each a file named by its key.

    >>> import tempfile
    >>> store = LocalStore(tempfile.mkdtemp())
    >>> store.write("a/b.txt", b"hello")
    >>> store.read("a/b.txt"), store.read_range("a/b.txt", 1, 3), store.list("a")
    (b'hello', b'el', ['a/b.txt'])
    """

    merge_gap = 0  # a pread of a gap costs more than a second pread
    # the work after a local read is Python and numpy, and threads contend for the GIL
    parallel_reads = False

    def __init__(self, root: str | os.PathLike[str]):
        self.fs = LocalFileSystem()
        self.root = self.url = str(Path(root).resolve())

    def local_path(self, key: str) -> Path:
        return Path(self.path(key))

    def file_url(self, key: str) -> str:
        return self.path(key)

    def foreign_filesystem(self) -> None:
        return None

    # -- reading -------------------------------------------------------------------------------

    def read_range(self, key: str, start: int, end: int | None) -> bytes:
        # one pread: fsspec's local file object costs more than the read
        return _pread(self.path(key), start, end)

    def fetch(self, ranges: Sequence[Range]) -> list[bytes]:
        # fsspec's local cat_ranges opens a file per range too, at more cost than a pread
        return [_pread(self.path(k), s, e) for k, s, e in ranges]

    # -- writing -------------------------------------------------------------------------------

    @contextmanager
    def open_write(self, key: str) -> Iterator[IO[bytes]]:
        # plain files: fsspec's wrapper costs more than the write itself
        path = self.path(key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as local:
            yield local
            local.flush()
            _start_writeback(local.fileno())

    def put_file(self, path: str | os.PathLike[str], key: str) -> None:
        if not hasattr(os, "copy_file_range"):
            return super().put_file(path, key)
        with open(path, "rb") as src, self.open_write(key) as dst:
            # the kernel copies, as cp does (and clones, on filesystems that can)
            offset, size = 0, os.fstat(src.fileno()).st_size
            while offset < size:
                step = min(size - offset, COPY_BLOCK)
                offset += os.copy_file_range(src.fileno(), dst.fileno(), step)
                _start_writeback(dst.fileno())

    def persist(self, prefix: str) -> None:
        """Flush each file and each directory entry below ``prefix``, up to the store's root:
        without it a power cut could lose them after the catalog already points at them."""
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

    def zarr_store(self) -> Any:
        from zarr.storage import LocalStore as ZarrLocalStore

        return ZarrLocalStore(self.root)


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
