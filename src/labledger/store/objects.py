"""Opening a store: the backend a URL names picks the :class:`~.base.Store` class.

Durability is what differs most: an object store makes a write durable when it acknowledges
it, a local disk needs fsync, which :meth:`~.base.Store.persist` does.
"""

from __future__ import annotations

import os
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

from labledger.errors import StoreUnavailable
from labledger.store.base import Store
from labledger.store.fsspec_store import FsspecStore
from labledger.store.local import LocalStore


def open_store(url: str | os.PathLike[str], storage_options: dict[str, Any] | None = None) -> Store:
    """The store at ``url``: a folder path or ``file://`` URL opens a :class:`LocalStore`,
    anything else (``s3://bucket/prefix``...) an :class:`FsspecStore`.

    >>> import tempfile
    >>> store = open_store(tempfile.mkdtemp())
    >>> store.write("a/b.txt", b"hello")
    >>> store.read("a/b.txt"), store.read_range("a/b.txt", 1, 3), store.list("a")
    (b'hello', b'el', ['a/b.txt'])
    """
    url = os.fspath(url)
    options = dict(storage_options or {})
    try:
        fs, root = fsspec.core.url_to_fs(url, **options)
    except (ImportError, ValueError) as exc:
        raise StoreUnavailable(f"store {url}: {exc}") from None
    if isinstance(fs, LocalFileSystem):
        return LocalStore(root)
    return FsspecStore(url, options)
