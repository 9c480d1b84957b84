"""Validity: from when (and until when) a wiring, a description or a calibration is in force.

A point is a run number (an ``int``) or a time (a timezone-aware ``datetime``). A period covers
a run if the run is at or after its start and before its end: by number for number points, by
the run's start time for time points.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from labledger.errors import InvalidArgument
from labledger.records import MAX_RUN_NUMBER
from labledger.times import parse_time

Point = int | datetime


def parse_point(value: Any) -> Point | None:
    """A run number or a time from what a user wrote (an int, an ISO string, a datetime).

    >>> parse_point(1240), parse_point("2026-11-05")
    (1240, datetime.datetime(2026, 11, 5, 0, 0, tzinfo=datetime.timezone.utc))
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is neither a run number nor a time")
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, int):
        if not 0 <= value <= MAX_RUN_NUMBER:
            raise ValueError(f"run {value}: run numbers go from 0 to {MAX_RUN_NUMBER}")
        return value
    parsed = parse_time(value) if isinstance(value, (str, datetime)) else None
    if parsed is None:
        raise ValueError(
            f"{value!r} is neither a run number nor a time (write 1240 or 2026-11-05T14:30)"
        )
    return parsed


def start_of(from_run: int | None, from_time: datetime | None) -> Point | None:
    """The start of a validity from its two columns (at most one is set)."""
    return from_run if from_run is not None else from_time


def since(from_run: int | None, from_time: datetime | None) -> str:
    """A validity's start in words: "from run 1240", "from 2026-11-05T00:00:00+00:00",
    "always"."""
    start = start_of(from_run, from_time)
    if start is None:
        return "always"
    return f"from run {start}" if isinstance(start, int) else f"from {start.isoformat()}"


def validity(from_run: Any = None, from_time: Any = None) -> tuple[int | None, datetime | None]:
    """The start of a validity from the two ways users give it (at most one of them)."""
    if from_run is not None and from_time is not None:
        raise InvalidArgument("give from_run or from_time, not both")
    try:
        if from_run is not None:
            point = parse_point(from_run)
            if not isinstance(point, int):
                raise ValueError(f"from_run={from_run!r} is not a run number")
            return point, None
        if from_time is not None:
            point = parse_point(from_time if not isinstance(from_time, int) else str(from_time))
            if isinstance(point, int):
                raise ValueError(f"from_time={from_time!r} is not a time (write 2026-11-05T14:30)")
            return None, point
    except ValueError as exc:
        raise InvalidArgument(str(exc)) from None
    return None, None


def covers(start: Point | None, until: Point | None, number: int, started: datetime) -> bool:
    """Whether the period ``[start, until)`` holds the run ``number`` that began at ``started``."""
    return after(start, number, started) and (until is None or not after(until, number, started))


def after(point: Point | None, number: int, started: datetime) -> bool:
    """Whether the run is at or after ``point`` (always, for no point)."""
    if point is None:
        return True
    if isinstance(point, int):
        return number >= point
    return started >= point


def overlaps(a0: Point | None, a1: Point | None, b0: Point | None, b1: Point | None) -> str | None:
    """How two periods overlap, in words, or None if they do not. Periods bounded in different
    kinds (run numbers against times) cannot be compared, and count as overlapping."""
    bounds = [p for p in (a0, a1, b0, b1) if p is not None]
    if len({isinstance(p, int) for p in bounds}) > 1:
        return "one bounded by run numbers, the other by times: give both the same way"
    low = max((p for p in (a0, b0) if p is not None), default=None)
    high = min((p for p in (a1, b1) if p is not None), default=None)
    if low is not None and high is not None and low >= high:  # type: ignore[operator]
        return None
    since = _text(low) if low is not None else "the start"
    until = _text(high) if high is not None else "now"
    return f"from {since} until {until}"


def _text(point: Point) -> str:
    return f"run {point}" if isinstance(point, int) else point.isoformat()
