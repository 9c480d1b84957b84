"""How arrays and catalog rows travel between the server and the remote client.

Arrays go as raw little-endian bytes with their dtype and shape in headers (``X-Dtype``,
``X-Shape``), compressed when the client accepts it and it pays (:func:`negotiate`); previews of
long signals are min/max decimated (:func:`labledger.decimation.minmax`) so that a plot of ten
million samples costs a few kilobytes. Catalog records go as JSON objects of their fields
(:func:`record_to_json`) and come back as the same plain records (:func:`record_from_json`),
so that the client's code is the local code, without a database library.

>>> data, headers = encode_array(np.arange(4, dtype=">i2"))
>>> headers["X-Dtype"], decode_array(data, headers).tolist()
('<i2', [0, 1, 2, 3])
"""

from __future__ import annotations

import functools
import gzip
from collections.abc import Mapping
from dataclasses import fields
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar, get_args, get_type_hints

import numpy as np

from labledger.errors import InvalidArgument

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

API = "/api/v1"  # where the server's routes are, below its address
# a notification stream's first line, sent once the server has subscribed it: whatever is
# recorded after a client reads it reaches that client
SUBSCRIBED = ": labledger notifications"
CODINGS = ("zstd", "lz4", "gzip")  # in the server's order of preference
_SMALL = 4096  # bytes: not worth compressing
_PROBE = 256 << 10  # a sample of this much decides whether compression pays
_PAYS = 0.85  # compressed to at most this fraction of its size, or sent as it is
R = TypeVar("R", bound="DataclassInstance")


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


# -- catalog records -------------------------------------------------------------------------


def record_to_json(record: Any) -> dict[str, Any]:
    """A record of :mod:`labledger.records` as a JSON object of its fields (times in ISO 8601).

    >>> from labledger.records import ProductInputRecord
    >>> record_to_json(ProductInputRecord(product_id="p", position=0, kind="run", ref="r",
    ...                                   run_number=1234))
    {'product_id': 'p', 'position': 0, 'kind': 'run', 'ref': 'r', 'run_number': 1234}
    """
    out = {}
    for f in fields(record):
        value = getattr(record, f.name)
        out[f.name] = value.isoformat() if isinstance(value, datetime) else value
    return out


def record_from_json(cls: type[R], data: Mapping[str, Any]) -> R:
    """The record :func:`record_to_json` sent, as an instance of ``cls``; a field the database
    numbers (not a constructor argument) is set after."""
    times = _times(cls)
    values = {}
    for f in fields(cls):
        value = data.get(f.name)
        values[f.name] = datetime.fromisoformat(value) if f.name in times and value else value
    made = cls(**{f.name: values[f.name] for f in fields(cls) if f.init})
    for f in fields(cls):
        if not f.init:
            setattr(made, f.name, values[f.name])
    return made


@functools.cache
def _times(cls: type) -> frozenset[str]:
    """The fields of ``cls`` that hold times."""
    hints = get_type_hints(cls)
    return frozenset(name for name, kind in hints.items() if datetime in (kind, *get_args(kind)))
