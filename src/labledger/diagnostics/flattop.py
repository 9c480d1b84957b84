"""The flat-top: the interval where a signal is on, shared by the diagnostic models.

A plasma shot has a rise, a steady part and a fall; physics is quoted over the steady part.
The models find it from their own signal, so it needs no set-point or trigger from elsewhere.
Also here: reading a model's signal over its flat-top, and in the unit the model computes in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from labledger.errors import InvalidArgument
from labledger.machine.units import factor

if TYPE_CHECKING:
    import xarray

    from labledger.machine.model import Component


def flattop(
    signal: xarray.DataArray,
    *,
    level: float = 0.5,
    trim: float = 0.1,
    block: float | None = None,
) -> tuple[float, float]:
    """The interval ``(t0, t1)`` in s where ``signal`` is on, trimmed of its edges.

    The envelope is the 90th percentile of ``|signal|`` in blocks of ``block`` s (default: a
    hundredth of the record), so a swept or oscillating signal (a Langmuir probe's current)
    counts as on throughout its sweep; "on" is the longest run of blocks whose envelope is
    above ``level`` times the envelope's peak; ``trim`` of that run's length is then cut from
    each end, to leave out the rise and the fall. A signal that is on for the whole record
    (a coil current) gives the whole record, trimmed.

    >>> import numpy as np, xarray as xr
    >>> t = np.arange(0.0, 1.0, 1e-3)
    >>> on = xr.DataArray(((t >= 0.2) & (t < 0.7)) * 1.0, dims="time", coords={"time": t})
    >>> [round(x, 3) for x in flattop(on)]
    [0.25, 0.65]
    """
    if "time" not in signal.coords or signal.sizes.get("time", 0) < 2:
        raise InvalidArgument(f"{signal.name}: a flat-top needs a signal over time")
    t = np.asarray(signal["time"].values, dtype=np.float64)
    x = np.abs(np.asarray(signal.values, dtype=np.float64))
    step = float(np.median(np.diff(t)))
    span = t[-1] - t[0] + step
    size = max(round((block if block is not None else span / 100) / step), 1)
    count = len(x) // size
    if count < 1:
        raise InvalidArgument(f"{signal.name}: a record of {span:g} s is shorter than a block")
    blocks = x[: count * size].reshape(count, size)
    # a percentile, not the maximum, so that a single spike does not switch the signal on
    with np.errstate(all="ignore"):
        envelope = np.nanpercentile(blocks, 90, axis=1)
    peak = np.nanmax(envelope) if np.isfinite(envelope).any() else np.nan
    if not np.isfinite(peak) or peak <= 0:
        raise InvalidArgument(f"{signal.name} is never on: its magnitude is zero or not a number")
    start, stop = _longest_run(envelope > level * peak)
    t0, t1 = t[start * size], t[min(stop * size, len(t)) - 1] + step
    cut = trim * (t1 - t0)
    return float(t0 + cut), float(t1 - cut)


def _longest_run(on: np.ndarray) -> tuple[int, int]:
    """``(start, stop)`` of the longest run of True in ``on`` (which has at least one)."""
    edges = np.diff(np.concatenate([[0], on.astype(np.int8), [0]]))
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    longest = int(np.argmax(stops - starts))
    return int(starts[longest]), int(stops[longest])


def in_units(signal: xarray.DataArray, unit: str) -> np.ndarray:
    """The values of ``signal`` in ``unit``, converted from its ``attrs["units"]`` (a lab may
    describe a current in mA; the models compute in SI)."""
    have = signal.attrs.get("units")
    values = np.asarray(signal.values, dtype=np.float64)
    if not have or have == unit:
        return values
    try:
        return values * factor(have, unit)
    except ValueError:
        raise InvalidArgument(
            f"{signal.name} is in {have}, which cannot be expressed in {unit}; fix its unit in "
            "the testbed description"
        ) from None


def on_flattop(
    component: Component, role: str, time: tuple[float, float] | None
) -> xarray.DataArray:
    """The component's signal for ``role`` over ``time`` (only that window is read), or over
    the flat-top of that same signal when ``time`` is None."""
    if time is not None:
        return component.signal(role, time=time)
    signal = component.signal(role)
    t0, t1 = flattop(signal)
    return signal.sel(time=slice(t0, t1))
