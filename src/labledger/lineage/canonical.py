"""Parameters and values made canonical, to hash them; and encoded, to call a step again.

Two calls that mean the same must hash the same: dict order does not matter, a tuple and a list
of the same items are one value, ``10`` and ``10.0`` are one number. :func:`canonical` gives that
form and :func:`digest` its sha256. :func:`encode` keeps the types instead (a tuple stays a
tuple), so that a recorded call can be made again as it was first made; :func:`decode` undoes it.

Values with no stable meaning are refused when the step is called, naming the parameter: a
function (its result could change while its name does not), an open file, a run or a product
(those are inputs, not parameters), any object these rules do not know.

>>> canonical({"b": (1, 2.0), "a": 0.5}) == canonical({"a": 0.5, "b": [1, 2]})
True
>>> decode(encode({"window": (-50, 10)}))
{'window': (-50, 10)}
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import io
import json
import math
import pathlib
import types
from collections.abc import Mapping
from typing import Any

import numpy as np

from labledger.errors import InvalidArgument

MAX_ARRAY = 100_000  # elements: a bigger array is data, to be given as a product input
_MAX_DEPTH = 64
_TAG = "$"  # tagged values are one-key dicts "$tuple", "$float"...; user keys may not use it


def canonical(value: Any, where: str = "params") -> Any:
    """``value`` as JSON-ready data in which equal meanings are equal."""
    return _walk(value, where, typed=False, depth=0)


def encode(value: Any, where: str = "params") -> Any:
    """``value`` as JSON-ready data from which :func:`decode` makes it again, types kept."""
    return _walk(value, where, typed=True, depth=0)


def digest(value: Any) -> str:
    """The sha256 (hex) of JSON-ready data, written with sorted keys and no spaces.

    >>> digest({"a": 1}) == digest({"a": 1})
    True
    """
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def dumps(value: Any) -> str:
    """JSON text of JSON-ready data (canonical or encoded), for display."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def decode(data: Any) -> Any:
    """The value :func:`encode` was given."""
    if isinstance(data, list):
        return [decode(v) for v in data]
    if not isinstance(data, dict):
        return data
    if len(data) == 1:
        ((tag, inner),) = data.items()
        if tag == "$tuple":
            return tuple(decode(v) for v in inner)
        if tag == "$set":
            return {decode(v) for v in inner}
        if tag == "$float":
            return float(inner)
        if tag == "$datetime":
            return dt.datetime.fromisoformat(inner)
        if tag == "$date":
            return dt.date.fromisoformat(inner)
        if tag == "$path":
            return pathlib.PurePosixPath(inner) if "/" in inner else pathlib.PurePath(inner)
        if tag == "$ndarray":
            return np.array(inner["data"], dtype=inner["dtype"]).reshape(inner["shape"])
        if tag == "$quantity":
            from labledger.machine.units import registry

            return registry().Quantity(decode(inner[0]), inner[1])
    return {k: decode(v) for k, v in data.items()}


def _walk(value: Any, where: str, *, typed: bool, depth: int) -> Any:
    if depth > _MAX_DEPTH:
        raise InvalidArgument(f"{where}: nested more than {_MAX_DEPTH} deep (or contains itself)")
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return _number(float(value), typed)
    if isinstance(value, enum.Enum):
        return _walk(value.value, where, typed=typed, depth=depth + 1)
    if isinstance(value, (list, tuple)):
        items = [
            _walk(v, f"{where}[{i}]", typed=typed, depth=depth + 1) for i, v in enumerate(value)
        ]
        return {"$tuple": items} if typed and isinstance(value, tuple) else items
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidArgument(
                    f"{where}: key {key!r} is a {type(key).__name__}; parameter dicts have text "
                    "keys"
                )
            if key.startswith(_TAG):
                raise InvalidArgument(f"{where}: key {key!r}: keys starting with $ are reserved")
            out[key] = _walk(item, f"{where}[{key!r}]", typed=typed, depth=depth + 1)
        return out
    if isinstance(value, (set, frozenset)):
        items = [_walk(v, f"{where}{{…}}", typed=typed, depth=depth + 1) for v in value]
        items.sort(key=dumps)
        return {"$set": items} if typed else items
    if isinstance(value, dt.datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, dt.date):
        return {"$date": value.isoformat()}
    if isinstance(value, pathlib.PurePath):
        return {"$path": str(value)}
    if isinstance(value, np.ndarray):
        return _array(value, where, typed)
    if _is_quantity(value):
        magnitude = _walk(value.magnitude, where, typed=typed, depth=depth + 1)
        return {"$quantity": [magnitude, format(value.units, "~")]}
    raise InvalidArgument(f"{where}: {_refusal(value)}")


def _number(value: float, typed: bool) -> Any:
    if not math.isfinite(value):
        return {"$float": repr(value)}  # 'nan', 'inf', '-inf': JSON has no spelling for them
    if typed:
        return value
    if value.is_integer() and abs(value) < 2**53:
        return int(value)  # 10.0 means 10 (and -0.0 means 0)
    return value


def _array(value: np.ndarray, where: str, typed: bool) -> Any:
    if value.dtype.kind not in "biufcUS" or value.size > MAX_ARRAY:
        raise InvalidArgument(
            f"{where}: an array of {value.size} {value.dtype} cannot be a parameter (at most "
            f"{MAX_ARRAY} numbers or strings); give large data as a product input instead"
        )
    if typed:
        return {
            "$ndarray": {
                "dtype": value.dtype.str,
                "shape": list(value.shape),
                "data": value.tolist(),
            }
        }
    data = np.ascontiguousarray(value)
    sha = hashlib.sha256(data.dtype.str.encode() + str(data.shape).encode() + data.tobytes())
    return {
        "$ndarray": {"dtype": data.dtype.str, "shape": list(data.shape), "sha256": sha.hexdigest()}
    }


def _is_quantity(value: Any) -> bool:
    return type(value).__module__.startswith("pint") and hasattr(value, "magnitude")


def _refusal(value: Any) -> str:
    kind = type(value).__name__
    if isinstance(value, (types.FunctionType, types.BuiltinFunctionType, types.MethodType)) or (
        callable(value) and not isinstance(value, type)
    ):
        return (
            f"a function ({getattr(value, '__qualname__', kind)}) cannot be a parameter: what it "
            "computes can change while its name stays the same; make it a step of its own, or "
            "pass a name or a number that selects it"
        )
    if isinstance(value, io.IOBase) or (hasattr(value, "read") and hasattr(value, "fileno")):
        return (
            "an open file cannot be a parameter: its content is not part of the call; pass its "
            "path, or ingest it and read it through a run"
        )
    if kind in ("Run", "Product", "GoodRunList"):
        return (
            f"a {kind} is an input, not a parameter: give runs as runs=..., products as inputs=..."
        )
    return (
        f"a {kind} has no canonical value to hash; give numbers, text, booleans, dates, arrays "
        "or lists, tuples and dicts of them"
    )
