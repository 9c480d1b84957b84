"""How NumPy data types are spelled in Zarr v3 metadata, and which path stores them.

Numbers, booleans and times are *streamed*: chunked, compressed and sharded, a file of any size
in bounded memory. Text (fixed-length bytes as HDF5 writes them, variable-length UTF-8) is
small in practice and kept in one uncompressed chunk. Both spellings are those zarr-python uses,
so it reads every array labledger writes; the test-suite checks that it does.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

_NUMBERS = {
    ("b", 1): "bool",
    **{("i", n): f"int{8 * n}" for n in (1, 2, 4, 8)},
    **{("u", n): f"uint{8 * n}" for n in (1, 2, 4, 8)},
    **{("f", n): f"float{8 * n}" for n in (2, 4, 8)},
    ("c", 8): "complex64",
    ("c", 16): "complex128",
}
_FROM_NAME = {name: np.dtype(kind + str(size)) for (kind, size), name in _NUMBERS.items()}
_FROM_NAME["bool"] = np.dtype(bool)
NAT = np.iinfo(np.int64).min  # NumPy's "not a time", as an int64


def little(dtype: np.dtype) -> np.dtype:
    """The little-endian twin of ``dtype`` (the byte order every stored chunk has)."""
    return dtype.newbyteorder("<") if dtype.itemsize > 1 and dtype.byteorder != "|" else dtype


def is_streamed(dtype: np.dtype) -> bool:
    """Numbers, booleans and datetimes: stored chunked and sharded, read slice by slice."""
    return (
        ((dtype.kind in "biufc" and (dtype.kind, dtype.itemsize) in _NUMBERS) or dtype.kind == "M")
        and dtype.fields is None
        and dtype.subdtype is None
    )


def is_text(dtype: np.dtype) -> bool:
    """Fixed-length bytes (``S``) or variable-length text (object or NumPy strings)."""
    return dtype.kind in "SOT"


def data_type(dtype: np.dtype) -> tuple[Any, Any]:
    """The Zarr v3 ``data_type`` and ``fill_value`` for ``dtype``."""
    if dtype.kind == "M":
        unit, count = np.datetime_data(dtype)
        return {
            "name": "numpy.datetime64",
            "configuration": {"unit": unit, "scale_factor": count},
        }, NAT
    if dtype.kind == "S":
        return {
            "name": "null_terminated_bytes",
            "configuration": {"length_bytes": dtype.itemsize},
        }, ""
    if dtype.kind in "OT":
        return "string", ""
    name = _NUMBERS[dtype.kind, dtype.itemsize]
    if dtype.kind == "b":
        return name, False
    if dtype.kind == "c":
        return name, [0.0, 0.0]
    return name, 0.0 if dtype.kind == "f" else 0


def numpy_dtype(spec: Any) -> np.dtype | None:
    """The NumPy type of a Zarr v3 ``data_type``, or None if this module does not know it."""
    if isinstance(spec, str):
        if spec == "string":
            return np.dtype(object)
        found = _FROM_NAME.get(spec)
        return little(found) if found is not None else None
    name, conf = spec.get("name"), spec.get("configuration", {})
    if name == "numpy.datetime64":
        return np.dtype(f"<M8[{conf.get('scale_factor', 1)}{conf['unit']}]")
    if name == "null_terminated_bytes":
        return np.dtype(f"S{conf['length_bytes']}")
    return None


def to_text(dtype: np.dtype) -> str:
    """A channel's type as the catalog records it: NumPy's spelling (``<i2``, ``|S15``), ``str``
    for variable-length text, the JSON field list of a compound.

    >>> to_text(np.dtype("<i2")), to_text(np.dtype([("a", "<i4")]))
    ('<i2', '[["a", "<i4"]]')
    """
    if dtype.fields is not None:
        return json.dumps(dtype.descr)
    return "str" if dtype.kind in "OT" else dtype.str


def from_text(text: str) -> np.dtype:
    """The type :func:`to_text` wrote; text comes back as NumPy's own string type."""
    if text == "str":
        return np.dtypes.StringDType() if hasattr(np, "dtypes") else np.dtype(object)
    if text.startswith("["):
        return np.dtype([tuple(field) for field in json.loads(text)])
    return np.dtype(text)
