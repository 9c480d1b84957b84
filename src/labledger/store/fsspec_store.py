"""A store on object storage (S3 and the rest of fsspec's filesystems, a server over HTTP):
durable on acknowledgement, where a request costs milliseconds and many run concurrently."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import IO, Any

import fsspec

from labledger.errors import StoreUnavailable
from labledger.store.base import Range, Store

# Maps an error of the filesystem, met reading the object(s) named, to labledger's own; None
# leaves it as raised (a missing object stays FileNotFoundError).
Refusal = Callable[[Exception, str], Exception | None]


class FsspecStore(Store):
    """The objects below ``url`` (``s3://bucket/prefix``, ``http://host/api/store``...), through
    the fsspec filesystem of its protocol; ``refusal`` turns the filesystem's errors into
    labledger's (a server's 401 or 413, say)."""

    merge_gap = 256 << 10  # a request costs more than a few hundred kB
    parallel_reads = True

    def __init__(
        self,
        url: str | os.PathLike[str],
        storage_options: dict[str, Any] | None = None,
        *,
        refusal: Refusal | None = None,
    ):
        url = os.fspath(url)
        self.storage_options = dict(storage_options or {})
        try:
            fs, root = fsspec.core.url_to_fs(url, **self.storage_options)
        except (ImportError, ValueError) as exc:
            raise StoreUnavailable(f"store {url}: {exc}") from None
        self.fs = fs
        self.root = root.rstrip("/")
        self.url = url.rstrip("/")
        self._refusal = refusal

    def local_path(self, key: str) -> None:
        return None

    def file_url(self, key: str) -> str:
        return self.fs.unstrip_protocol(self.path(key))

    def foreign_filesystem(self) -> fsspec.AbstractFileSystem:
        return self.fs

    # -- reading -------------------------------------------------------------------------------

    def read(self, key: str) -> bytes:
        with self._reading(key):
            return super().read(key)

    def read_range(self, key: str, start: int, end: int | None) -> bytes:
        with self._reading(key):
            return self.fs.cat_file(self.path(key), start=start, end=end)

    def fetch(self, ranges: Sequence[Range]) -> list[bytes]:
        if not ranges:
            return []
        keys, starts, ends = zip(*ranges, strict=True)
        paths = [self.path(k) for k in keys]
        with self._reading(keys[0] if len(set(keys)) == 1 else ", ".join(sorted(set(keys)))):
            return self.fs.cat_ranges(paths, list(starts), list(ends), on_error="raise")

    @contextmanager
    def _reading(self, what: str) -> Iterator[None]:
        try:
            yield
        except Exception as exc:
            mapped = None if self._refusal is None else self._refusal(exc, what)
            if mapped is None:
                raise
            raise mapped from None

    # -- writing -------------------------------------------------------------------------------

    @contextmanager
    def open_write(self, key: str) -> Iterator[IO[bytes]]:
        with self.fs.open(self.path(key), "wb") as f:
            yield f

    def persist(self, prefix: str) -> None:
        """Nothing to do: an object store makes a write durable when it acknowledges it."""

    def zarr_store(self) -> Any:
        from zarr.storage import FsspecStore as ZarrFsspecStore

        return ZarrFsspecStore.from_url(self.url, storage_options=self.storage_options)
