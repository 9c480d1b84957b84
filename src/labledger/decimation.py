"""Min/max decimation: a long signal in a few points for a plot, every peak and dip kept.

``run.signal(name, points=N)`` reads a signal this way, locally and on a server, where only the
kept points travel.
"""

from __future__ import annotations

import itertools

import numpy as np

from labledger.errors import InvalidArgument


def minmax(values: np.ndarray, points: int) -> np.ndarray:
    """The indices of a min/max decimation of ``values`` to at most ``points`` samples: the
    samples split into ``points // 2`` buckets, each giving its smallest and largest sample in
    the order they occur, so that a plot keeps every peak and dip.

    >>> minmax(np.array([0, 5, 1, 1, -3, 2, 0, 0]), 4).tolist()
    [0, 1, 4, 5]
    """
    n = len(values)
    checked_points(points)
    if n <= points:
        return np.arange(n)
    buckets = points // 2
    edges = np.linspace(0, n, buckets + 1).astype(np.int64)
    low = high = values
    if values.dtype.kind == "f":  # NaN would win every argmin and argmax: a gap is no extreme
        gaps = np.isnan(values)
        if gaps.any():  # the copies only when there are gaps (they cost 3/4 of the time)
            low, high = np.where(gaps, np.inf, values), np.where(gaps, -np.inf, values)
    width = edges[1:] - edges[:-1]
    if np.all(width == width[0]):  # equal buckets: one reshape, no Python loop
        size = int(width[0])
        lows = low[: size * buckets].reshape(buckets, size).argmin(axis=1) + edges[:-1]
        highs = high[: size * buckets].reshape(buckets, size).argmax(axis=1) + edges[:-1]
    else:
        spans = list(itertools.pairwise(edges))
        lows = np.array([a + low[a:b].argmin() for a, b in spans])
        highs = np.array([a + high[a:b].argmax() for a, b in spans])
    return np.sort(np.stack([lows, highs], axis=1), axis=1).ravel()


def checked_points(points: int) -> int:
    """``points`` if a min/max decimation can keep that many samples; else a one-line refusal.

    >>> checked_points(1)
    Traceback (most recent call last):
    ...
    labledger.errors.InvalidArgument: points=1: at least 2 (a minimum and a maximum)
    """
    if isinstance(points, bool) or not isinstance(points, int | np.integer) or points < 2:
        raise InvalidArgument(f"points={points}: at least 2 (a minimum and a maximum)")
    return int(points)
