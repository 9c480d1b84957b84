"""What requests say, checked: run-number lists, JSON objects, slices, byte ranges, store keys,
upload names; and values made JSON for headers."""

from __future__ import annotations

import json
import posixpath
import re
from datetime import datetime
from typing import Annotated, Any

import numpy as np
from fastapi import Path

from labledger.errors import InvalidArgument
from labledger.records import MAX_RUN_NUMBER

Number = Annotated[int, Path(ge=0, le=MAX_RUN_NUMBER, description="A run number.")]
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def upload_name(name: str | None) -> str:
    """An uploaded file's name, as a plain file name (no folders, no '..')."""
    if not name or "/" in name or "\\" in name or "\x00" in name or name in (".", ".."):
        raise InvalidArgument(f"upload name {name!r}: a plain file name, without folders")
    if len(name.encode()) > 255:
        raise InvalidArgument("upload name: at most 255 bytes")
    return name


def safe_key(key: str) -> str:
    """A store key that names an object below the store's root and nothing else."""
    parts = key.split("/")
    odd = not key or "\\" in key or "\x00" in key or posixpath.normpath(key) != key
    if odd or any(p in ("", ".", "..") for p in parts):
        raise InvalidArgument(f"{key!r} is not an object key (no '..', '.', '//' or leading '/')")
    return key


def byte_range(header: str, size: int) -> tuple[int, int]:
    match = _RANGE.match(header.strip())
    if match is None or match.groups() == ("", ""):
        raise InvalidArgument(f"Range {header!r}: one range, 'bytes=a-b', 'bytes=a-' or 'bytes=-n'")
    first, last = match.groups()
    if first == "":
        if int(last) == 0 or size == 0:
            raise InvalidArgument(f"Range {header!r} asks for no bytes of {size}")
        return max(0, size - int(last)), size
    start = int(first)
    end = size if last == "" else min(size, int(last) + 1)
    if start >= size or end <= start:
        raise InvalidArgument(f"Range {header!r} is outside the object's {size} bytes")
    return start, end


def slice_of(text: str | None) -> slice:
    if text is None:
        return slice(None)
    parts = text.split(":")
    try:
        if len(parts) not in (2, 3):
            raise ValueError
        numbers = [int(p) if p.strip() else None for p in parts]
    except ValueError:
        raise InvalidArgument(f"slice={text!r}: write start:stop or start:stop:step") from None
    if len(numbers) == 3 and numbers[2] is not None and numbers[2] <= 0:
        raise InvalidArgument(f"slice={text!r}: the step must be positive")
    return slice(*numbers)


def integers(text: str, name: str, most: int) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise InvalidArgument(f"{name}={text!r}: comma-separated whole numbers") from None
    if any(abs(v) > MAX_RUN_NUMBER for v in values):
        raise InvalidArgument(f"{name}: run numbers go up to {MAX_RUN_NUMBER}")
    if not values or len(values) > most:
        raise InvalidArgument(f"{name}: 1 to {most} numbers")
    return values


def json_object(text: str | None, name: str) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        raise InvalidArgument(f"{name}: not JSON ({text[:80]!r})") from None
    if not isinstance(value, dict):
        raise InvalidArgument(f"{name}: a JSON object of key -> value(s)")
    return value


def jsonable(value: Any) -> Any:
    if isinstance(value, (np.generic,)):
        return value.item()
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    return value if isinstance(value, (str, int, float, bool, type(None))) else str(value)
