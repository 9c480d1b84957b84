"""Times: from what a raw format stores, and from what a user types; always in UTC.

Every part of labledger that reads a time reads it here, so that "2026-11-01" means the same
instant to a search, a validity period and a flag.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np

from labledger.errors import InvalidArgument

LABVIEW_EPOCH = np.datetime64("1904-01-01T00:00:00")  # what LabVIEW writes for "no time set"


def parse_time(value: Any) -> datetime | None:
    """An acquisition time from whatever a format stores (datetime64, ISO text, bytes), in UTC;
    None for LabVIEW's "no time set" and for text that is not a time.

    >>> parse_time(b"2009-02-12 14:58:04-0600")
    datetime.datetime(2009, 2, 12, 20, 58, 4, tzinfo=datetime.timezone.utc)
    """
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.reshape(())[()]
    if isinstance(value, np.datetime64):
        if np.isnat(value) or value == LABVIEW_EPOCH:
            return None
        micros = value.astype("datetime64[us]").astype(np.int64)
        return datetime.fromtimestamp(0, UTC) + np.timedelta64(int(micros), "us").item()
    if isinstance(value, (bytes, np.bytes_)):
        value = bytes(value).decode("utf-8", "replace")
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            return None
    else:
        return None
    if parsed.tzinfo is None:  # sources that do not say are taken to write UTC
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def parse_when(value: str | datetime | None, name: str) -> datetime | None:
    """A time bound from what a user typed: an ISO date or datetime, UTC unless it says.

    >>> parse_when("2026-11-01", "since")
    datetime.datetime(2026, 11, 1, 0, 0, tzinfo=datetime.timezone.utc)
    """
    if value is None:
        return None
    parsed = parse_time(value)
    if parsed is None:
        raise InvalidArgument(
            f"{name}={value!r} is not a date or time; write it as 2026-11-01 or 2026-11-01T14:30"
        )
    return parsed
