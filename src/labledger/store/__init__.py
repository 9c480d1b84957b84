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
from labledger.store.objects import ObjectStore

__all__ = [
    "AnyArray",
    "ArrayWriter",
    "ObjectStore",
    "StoredArray",
    "TextArray",
    "ZarrArray",
    "open_array",
    "write_array",
    "write_group",
]
