"""Where the bytes live: raw files and chunked arrays on a folder or an object store."""

from labledger.store.arrays import (
    AnyArray,
    ArrayWriter,
    StoredArray,
    TextArray,
    ZarrArray,
    open_array,
    write_array,
    write_group,
)
from labledger.store.base import Store
from labledger.store.fsspec_store import FsspecStore
from labledger.store.local import LocalStore
from labledger.store.objects import open_store

__all__ = [
    "AnyArray",
    "ArrayWriter",
    "FsspecStore",
    "LocalStore",
    "Store",
    "StoredArray",
    "TextArray",
    "ZarrArray",
    "open_array",
    "open_store",
    "write_array",
    "write_group",
]
