"""Turning the values raw formats hand over (NumPy scalars, bytes, datetime64) into JSON.

Attributes and properties end up in the catalog (searchable, shown by ``labledger show``) and in
the stored arrays' metadata documents, both JSON. Values keep their meaning; only their storage
type may change (an HDF5 int32 attribute comes back as a Python int).
"""

from __future__ import annotations

import math
import os
from datetime import date, datetime
from typing import Any

import numpy as np

Scalar = str | int | float | bool

NUL_SHOWN = "\u2400"  # what a NUL of a name or a text value is kept as


def to_json(value: Any) -> Any:
    """A JSON-safe twin of ``value``; non-finite floats become the strings NaN, Infinity.

    >>> to_json({"a": np.int32(3), "b": b"x-ray", "t": np.datetime64("2026-11-21T10:00:00")})
    {'a': 3, 'b': 'x-ray', 't': '2026-11-21T10:00:00'}
    """
    if isinstance(value, dict):
        return {without_nul(str(k)): to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_json(value.item()) if value.ndim == 0 else [to_json(v) for v in value.tolist()]
    if isinstance(value, (bytes, np.bytes_)):
        return decode_text(bytes(value))
    if isinstance(value, np.datetime64):
        return str(value) if not np.isnat(value) else None
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, complex):
        return [to_json(value.real), to_json(value.imag)]
    if isinstance(value, str):
        return without_nul(value)
    if value is None or isinstance(value, (int, float, bool)):
        return value
    return without_nul(str(value))


def to_scalar(value: Any, max_text: int = 1000) -> Scalar | None:
    """``value`` as a searchable metadata scalar, or None if it is not one (an array, a long
    text, a missing time).

    >>> to_scalar(np.array([b"Ar"])), to_scalar(np.float64(1.5)), to_scalar(np.zeros(3))
    ('Ar', 1.5, None)
    """
    if isinstance(value, np.ndarray):
        if value.size != 1 or value.dtype.kind not in "biufSUOM":
            return None
        value = value.reshape(()).item() if value.dtype.kind != "M" else value.reshape(())[()]
    if isinstance(value, np.datetime64):
        return None if np.isnat(value) else str(value)
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, (bytes, bytearray)):
        value = decode_text(bytes(value))
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str):
        value = without_nul(value.strip())
        return value if len(value) <= max_text else None
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return None


def scalars(properties: Any, prefix: str = "") -> dict[str, Scalar]:
    """The searchable scalars among a file's, group's or node's properties, keys prefixed.

    >>> scalars({"gas": b"Ar", "trace": np.zeros(3)}, "PXI@")
    {'PXI@gas': 'Ar'}
    """
    found = {}
    for name in properties:
        try:
            value = to_scalar(properties[name])
        except Exception:  # an attribute of a type the reader cannot even hand over
            continue
        if value is not None:
            found[without_nul(f"{prefix}{name}")] = value
    return found


def without_metadata(dtype: np.dtype) -> np.dtype:
    """``dtype`` without what a reader attached to it (h5py marks a compound's byte fields with
    their encoding), packed: the type as NumPy, Zarr and the catalog spell it.

    >>> without_metadata(np.dtype([("s", np.dtype("S4", metadata={"h5py_encoding": "ascii"}))]))
    dtype([('s', 'S4')])
    """
    if dtype.fields is None:
        return np.dtype(dtype.str)
    return np.dtype([(name, without_metadata(dtype.fields[name][0])) for name in dtype.names or ()])


def without_nul(text: str) -> str:
    """Text with each NUL shown as "␀" (U+2400): TDMS names and properties may hold NUL, and
    PostgreSQL text and JSON may not. A channel named with NUL is found by either spelling.

    >>> without_nul("ai\\x000")
    'ai␀0'
    """
    return text.replace("\0", NUL_SHOWN) if "\0" in text else text


def parse_number(text: str) -> int | float | str:
    """Text as the number it spells, or the text itself.

    >>> parse_number("42"), parse_number("1e-3"), parse_number("Ar")
    (42, 0.001, 'Ar')
    """
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def single(value: Any) -> Any:
    """An attribute as one value: NeXus writers often store one string as a 1-element array.

    >>> single(["NXentry"]), single("NXdata"), single([1, 2])
    ('NXentry', 'NXdata', [1, 2])
    """
    return value[0] if isinstance(value, list) and len(value) == 1 else value


def decode_text(raw: bytes) -> str:
    """Text from bytes: UTF-8, or Latin-1 for the older files that wrote it (HDF5 before 1.8
    had no notion of encoding, and instrument software wrote "µm" as one byte).

    >>> decode_text(b"\\xb5m"), decode_text("µm".encode())
    ('µm', 'µm')
    """
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def path_text(name: str) -> str:
    """A file name or path as text the catalog can keep and a terminal can show: the bytes of a
    name that is not UTF-8 (which Python holds as surrogates) read as Latin-1, as
    :func:`decode_text` reads old files' text.

    >>> path_text("caf\\udce9_12.csv"), path_text("café.csv")
    ('café_12.csv', 'café.csv')
    """
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return decode_text(os.fsencode(name))
    return name
