"""How arrays and catalog rows travel between the server and the remote client.

Arrays go as raw little-endian bytes with their dtype and shape in headers (``X-Dtype``,
``X-Shape``), compressed when the client accepts it and it pays (:func:`negotiate`); previews of
long signals are min/max decimated (:func:`labledger.decimation.minmax`) so that a plot of ten
million samples costs a few kilobytes. Catalog rows go as JSON objects of their columns
(:func:`row_to_json`) and come back as the same ORM classes (:func:`row_from_json`), so that the
client's code is the local code.

>>> data, headers = encode_array(np.arange(4, dtype=">i2"))
>>> headers["X-Dtype"], decode_array(data, headers).tolist()
('<i2', [0, 1, 2, 3])
"""

from __future__ import annotations

import gzip
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import inspect

from labledger.errors import InvalidArgument

API = "/api/v1"  # where the server's routes are, below its address
# a notification stream's first line, sent once the server has subscribed it: whatever is
# recorded after a client reads it reaches that client
SUBSCRIBED = ": labledger notifications"
CODINGS = ("zstd", "lz4", "gzip")  # in the server's order of preference
_SMALL = 4096  # bytes: not worth compressing
_PROBE = 256 << 10  # a sample of this much decides whether compression pays
_PAYS = 0.85  # compressed to at most this fraction of its size, or sent as it is


def encode_array(array: np.ndarray) -> tuple[bytes, dict[str, str]]:
    """The bytes of ``array`` (C order, little-endian) and the headers that describe them."""
    array = np.ascontiguousarray(array)
    if array.dtype.byteorder == ">" or (array.dtype.byteorder == "=" and not _little()):
        array = array.astype(array.dtype.newbyteorder("<"))
    if array.dtype.hasobject:
        raise InvalidArgument(f"an array of {array.dtype} cannot be sent as bytes")
    shape = ",".join(str(n) for n in array.shape)
    return array.tobytes(), {"X-Dtype": array.dtype.str, "X-Shape": shape}


def decode_array(data: bytes, headers: Mapping[str, str]) -> np.ndarray:
    """The array :func:`encode_array` sent."""
    dtype = np.dtype(headers["X-Dtype"])
    text = headers["X-Shape"]
    shape = tuple(int(n) for n in text.split(",")) if text else ()
    return np.frombuffer(data, dtype=dtype).reshape(shape)


def negotiate(accept_encoding: str | None, data: bytes) -> str | None:
    """The content coding to send ``data`` in: the first of :data:`CODINGS` the client accepts,
    if compressing a sample of the data shrinks it enough to pay; else None (as it is)."""
    if not accept_encoding or len(data) < _SMALL:
        return None
    accepted = _accepted(accept_encoding)
    for coding in CODINGS:
        if coding in accepted:
            sample = data[:_PROBE]
            return coding if len(compress(sample, coding)) <= _PAYS * len(sample) else None
    return None


def compress(data: bytes, coding: str) -> bytes:
    if coding == "zstd":
        import zstandard

        return zstandard.ZstdCompressor(level=1).compress(data)
    if coding == "lz4":
        import lz4.frame

        return lz4.frame.compress(data)
    if coding == "gzip":
        return gzip.compress(data, compresslevel=1)
    raise InvalidArgument(f"content coding {coding!r}: one of {', '.join(CODINGS)}")


def decompress(data: bytes, coding: str | None) -> bytes:
    if not coding or coding == "identity":
        return data
    if coding == "zstd":
        import zstandard

        return zstandard.ZstdDecompressor().decompressobj().decompress(data)
    if coding == "lz4":
        import lz4.frame

        return lz4.frame.decompress(data)
    if coding == "gzip":
        return gzip.decompress(data)
    raise InvalidArgument(f"content coding {coding!r}: one of {', '.join(CODINGS)}")


def _accepted(header: str) -> set[str]:
    found = set()
    for part in header.split(","):
        name, _, params = part.strip().partition(";")
        if params.strip().replace(" ", "") in ("q=0", "q=0.0", "q=0.00", "q=0.000"):
            continue
        found.add(name.strip().lower())
    return found


def _little() -> bool:
    return np.little_endian


# -- catalog rows ----------------------------------------------------------------------------


def row_to_json(row: Any) -> dict[str, Any]:
    """A catalog row as a JSON object of its columns (times in ISO 8601)."""
    out = {}
    for attr in inspect(type(row)).column_attrs:
        value = getattr(row, attr.key)
        out[attr.key] = value.isoformat() if isinstance(value, datetime) else value
    return out


def row_from_json(cls: type, data: Mapping[str, Any]) -> Any:
    """The row :func:`row_to_json` sent, as an instance of ``cls`` (not in any session)."""
    values = {}
    for attr in inspect(cls).column_attrs:
        value = data.get(attr.key)
        if value is not None and isinstance(value, str) and _is_time(attr):
            value = datetime.fromisoformat(value)
        values[attr.key] = value
    return cls(**values)


def _is_time(attr: Any) -> bool:
    kind = attr.columns[0].type
    kind = getattr(kind, "impl_instance", kind)  # a TypeDecorator: what it stores as
    try:
        return kind.python_type is datetime
    except NotImplementedError:
        return False
