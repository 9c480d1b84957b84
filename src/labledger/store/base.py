"""The one interface to where bytes live: :class:`Store`, implemented once per backend.

Everything labledger keeps (raw files, array chunks, metadata documents) is an object named by a
key such as ``runs/<id>/data/zarr.json`` below one root. A folder (:class:`~.local.LocalStore`)
and object storage through fsspec (:class:`~.fsspec_store.FsspecStore`) implement the same
methods; what differs between them (durability, the fast paths of a local disk, how another
library reads a file) is asked of the store, never tested from outside by its kind.
"""

from __future__ import annotations

import abc
import builtins
import os
import posixpath
import shutil
from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import fsspec
from fsspec.utils import merge_offset_ranges

from labledger.errors import StoreUnavailable

Buffer = bytes | memoryview  # what a range read hands back: a view where a merged read held it
Range = tuple[str, int, int | None]  # key, start, end; a negative start counts from the end
_MERGE_BLOCK = 16 << 20  # one huge request would forgo fetching parts concurrently
COPY_BLOCK = 64 << 20


class Store(abc.ABC):
    """Named byte objects below one root (a folder, ``s3://bucket/prefix``, a server).

    Open one with :func:`~labledger.store.open_store`.
    """

    fs: fsspec.AbstractFileSystem  # what the methods shared by every backend go through
    root: str  # the root as ``fs`` names it
    url: str  # the root as a user gives it
    merge_gap: int  # ranges closer than this are read in one request (see read_ranges)
    parallel_reads: bool  # reads wait on the network, so threads overlapping them help

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    def path(self, key: str) -> str:
        """The filesystem path of ``key`` (what fsspec calls the object)."""
        return posixpath.join(self.root, key) if key else self.root

    # -- what a caller asks instead of the backend ---------------------------------------------

    @abc.abstractmethod
    def local_path(self, key: str) -> Path | None:
        """``key`` as a file on this machine, to memory-map or hand to a library that opens
        files itself; None where the object is not a local file."""

    @abc.abstractmethod
    def file_url(self, key: str) -> str:
        """``key`` as a path or URL that another library (DuckDB) opens, reading through
        :meth:`foreign_filesystem` where there is one."""

    @abc.abstractmethod
    def foreign_filesystem(self) -> fsspec.AbstractFileSystem | None:
        """The fsspec filesystem another library must be given to read :meth:`file_url`
        (with this store's credentials and endpoint); None where it reads files itself."""

    # -- reading -------------------------------------------------------------------------------

    def read(self, key: str) -> bytes:
        return self.fs.cat_file(self.path(key))

    @abc.abstractmethod
    def read_range(self, key: str, start: int, end: int | None) -> bytes:
        """Bytes ``[start, end)`` of an object; a negative ``start`` counts from its end."""

    def read_ranges(self, ranges: Sequence[Range]) -> list[Buffer]:
        """Many byte ranges at once: neighbours are merged into one request, and an object
        store fetches the requests concurrently. A negative start counts from the end."""
        if not ranges:
            return []
        is_tail = [start < 0 or end is None for _, start, end in ranges]
        tails = [i for i, tail in enumerate(is_tail) if tail]
        spans = [i for i, tail in enumerate(is_tail) if not tail]
        found: list[Buffer] = [b""] * len(ranges)
        for i, blob in zip(tails, self.fetch([ranges[i] for i in tails])):
            found[i] = blob
        if spans:
            keys, starts, ends = merge_offset_ranges(
                [ranges[i][0] for i in spans],
                [ranges[i][1] for i in spans],
                [ranges[i][2] for i in spans],
                max_gap=self.merge_gap,
                max_block=_MERGE_BLOCK,
            )
            blocks: dict[str, list[tuple[int, int, bytes]]] = {}
            merged = list(zip(keys, starts, ends, strict=True))
            for (key, start, end), blob in zip(merged, self.fetch(merged)):
                blocks.setdefault(key, []).append((start, end, blob))
            for i in spans:
                key, start, end = ranges[i]
                for first, last, blob in blocks[key]:
                    if first <= start and end <= last:  # type: ignore[operator]
                        whole = first == start and end == last
                        found[i] = blob if whole else memoryview(blob)[start - first : end - first]  # type: ignore[operator]
                        break
        return found

    @abc.abstractmethod
    def fetch(self, ranges: Sequence[Range]) -> list[bytes]:
        """Each range as asked, none merged (what :meth:`read_ranges` builds on)."""

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

    def children(self, prefix: str) -> builtins.list[str]:
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

    @abc.abstractmethod
    def open_write(self, key: str) -> AbstractContextManager[IO[bytes]]:
        """A file to stream an object into; on an object store it appears only once closed."""

    def put_file(self, path: str | os.PathLike[str], key: str) -> None:
        """Keep a local file byte for byte as ``key``."""
        with open(path, "rb") as src, self.open_write(key) as dst:
            shutil.copyfileobj(src, dst, COPY_BLOCK)

    def delete(self, prefix: str) -> None:
        """Remove ``prefix`` and everything below it; nothing there is not an error."""
        path = self.path(prefix)
        if self.fs.exists(path):
            self.fs.rm(path, recursive=True)

    @abc.abstractmethod
    def persist(self, prefix: str) -> None:
        """Make everything written below ``prefix`` durable before anything refers to it."""

    def check_writable(self) -> None:
        """Fail early, with the reason, if objects cannot be written here."""
        try:
            self.fs.makedirs(self.root, exist_ok=True)
            probe = ".labledger-write-probe"
            self.write(probe, b"")
            self.delete(probe)
        except (OSError, PermissionError) as exc:
            raise StoreUnavailable(f"store {self.url} is not writable: {exc}") from None

    @abc.abstractmethod
    def zarr_store(self) -> Any:
        """The same root as a zarr-python store, for the arrays zarr-python writes and reads."""
