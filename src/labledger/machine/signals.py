"""Signals by name: a physical name resolved, for one run, to calibrated values with a time axis.

``Langmuir_I`` for run 1234 is: the configuration the run was stamped with says which port the
signal was wired to, the description says which channel of the run that port wrote, the DAQ's
own scaling turns raw counts into volts, and the calibration in force (or the one asked for)
turns volts into amperes. A signal with no wire is its calibration's expression over other
signals. Every step is named in the result's attributes.

>>> i = la.runs[1234].signal("Langmuir_I")
>>> i.attrs["calibration"], i.attrs["channel"], i.attrs["units"]
('langmuir_i@1', 'PXI M6251/ai3', 'A')
>>> i = run.signal("Langmuir_I")                 # run 1255: re-wired, then recalibrated
>>> i.attrs["calibration"], i.attrs["channel"], i.attrs["units"]
('langmuir_i@2', 'PXI M6251/ai11', 'A')
"""

from __future__ import annotations

import difflib
import math
import threading
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

import labledger.reads as reads
from labledger.decimation import checked_points, minmax
from labledger.errors import DataWarning, InvalidArgument, NotFound
from labledger.machine.calibration import (
    Calibration,
    CalibrationError,
    by_label,
    expression_unit,
    in_force,
)
from labledger.machine.configuration import Configuration, resolve
from labledger.machine.logs import Logs, Snapshot
from labledger.machine.units import factor
from labledger.records import RunCatalog
from labledger.runs import nonfinite, signal_array

if TYPE_CHECKING:
    import xarray

    from labledger.runs import Channel, Run, TimeWindow
    from labledger.store import Store

_REMOTE_WORKERS = 16
_DECIMATED = "decimated_from"  # the attribute of a decimated signal: the samples it stands for


@dataclass
class Values:
    """A signal resolved for one run, before it becomes a DataArray. Its time axis is
    regular, ``start + i * step`` for ``i`` in ``[first, stop)``, made into an array only if
    asked: a table of many runs needs one, not one per run."""

    values: np.ndarray
    axis: tuple[float, float, int, int] | np.ndarray | None  # or the times themselves
    unit: str
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def time(self) -> np.ndarray | None:
        if self.axis is None or isinstance(self.axis, np.ndarray):
            return self.axis
        start, step, first, stop = self.axis
        time = np.arange(first, stop, dtype=np.float64)  # in place: no second array
        time *= step
        time += start
        self.axis = time
        return time

    def same_axis(self, other: Values) -> bool:
        """Whether the two have the same samples in time."""
        if self.values.size != other.values.size:
            return False
        if isinstance(self.axis, tuple) and isinstance(other.axis, tuple):
            return self.axis == other.axis
        a, b = self.time, other.time
        if a is None or b is None:
            return a is None and b is None
        return a.size == 0 or (a[0] == b[0] and a[-1] == b[-1])


def read(
    run: Run,
    name: str,
    *,
    calibration: str | None = None,
    time: TimeWindow | None = None,
    snapshot: Snapshot,
    points: int | None = None,
) -> xarray.DataArray:
    """The signal ``name`` of ``run`` as an ``xarray.DataArray`` over time (s); with
    ``points``, its min/max decimation (the times of the kept samples only are computed),
    read from the channel's min/max pyramid where the signal is its channel under a monotonic
    scaling and calibration (linear: a negative gain swaps what is the minimum, not which
    samples are kept), else from the whole window."""
    if points is not None:
        checked_points(points)
    config = _configuration(snapshot, run, [name])
    log = reads.current()
    if config is None or _is_channel(config, run, name):
        found = _own_scaling(run, name, calibration, _window(time), points)
        if log is not None:  # the channel itself is noted as it is read
            log.signals(run, [name], {})
    else:
        resolver = _Resolver(run, snapshot, config, time, log)
        found = resolver.value(name, calibration, (), points)
        if log is not None:
            log.signals(run, [name], resolver.used, resolver.channels)
    if points is not None and _DECIMATED not in found.attrs:  # not from a pyramid: by hand
        found = _decimated(found, points)
    return _to_xarray(run, name, config, found)


def _decimated(found: Values, points: int) -> Values:
    kept = minmax(found.values, points)
    axis: Any = found.axis
    if isinstance(axis, tuple):  # a regular axis: the kept samples' times, not all of them
        start, step, first, _ = axis
        axis = start + (first + kept) * step
    elif axis is not None:
        axis = axis[kept]
    attrs = {**found.attrs, _DECIMATED: int(found.values.size), "points": points}
    return Values(found.values[kept], axis, found.unit, attrs)


def _previewed(
    channel: Channel, rows: slice, points: int | None
) -> tuple[np.ndarray, np.ndarray, dict[str, int]] | None:
    """The samples a ``points`` preview of ``rows`` of ``channel`` keeps, from its pyramid:
    their indices, raw values, and the attributes that say so; None to read ``rows`` whole."""
    if points is None:
        return None
    kept = channel.preview(rows, points)
    if kept is None:
        return None
    first, stop, _ = rows.indices(channel.shape[0])
    return kept[0], kept[1], {_DECIMATED: stop - first, "points": points}


def _times(axis: Any, rows: slice, length: int, kept: np.ndarray | None) -> Any:
    """A regular time axis of ``rows``: ``(start, step, first, stop)``, or the times of the
    ``kept`` samples only; None without one."""
    if axis is None or not axis.step:
        return None
    if kept is not None:
        return (axis.start or 0.0) + kept * axis.step
    first, stop, _ = rows.indices(length)
    return (axis.start or 0.0, axis.step, first, stop)


def read_many(
    runs: Sequence[Run],
    names: Sequence[str],
    *,
    logs: Logs,
    catalog: RunCatalog,
    store: Store,
    calibration: dict[str, str] | None = None,
    time: TimeWindow | None = None,
    workers: int | None = None,
) -> xarray.Dataset:
    """Several signals of several runs as one ``xarray.Dataset`` over (run, time).

    The catalog is asked once for every run's channels and the logs once for the machine; runs
    are resolved by a pool of threads (one for local files, many for an object store, where
    reads wait on the network), each writing its row of a (run, time) array per signal, so no
    per-run objects pile up."""
    import xarray

    if isinstance(names, str):
        names = [names]
    runs, names = list(runs), list(dict.fromkeys(names))
    if not runs:
        raise NotFound("no runs to read signals from (the run selection is empty)")
    if not names or not all(isinstance(n, str) for n in names):
        raise InvalidArgument(f"names={names!r}: give a list of signal names")
    if workers is not None and (isinstance(workers, bool) or workers < 1):
        raise InvalidArgument(f"workers={workers!r}: at least 1 thread")
    snapshot = logs.current()
    by_id = {r.id: r for r in runs}
    for run_id, rows in catalog.channels_of(list(by_id)).items():
        by_id[run_id].channels.prime(rows)
    chosen = calibration or {}
    table = _Table(len(runs), names)
    log = reads.current()  # taken here: worker threads do not inherit the caller's context

    def one(index: int) -> None:
        run = runs[index]
        config = _configuration(snapshot, run, names)
        resolver = None
        own = []  # the channels read in their own scaling
        for name in names:
            if config is None or _is_channel(config, run, name):
                found = _own_scaling(run, name, chosen.get(name), _window(time), None)
                own.append(found.attrs["channel"])  # this thread's reads are not noted
            else:
                resolver = resolver or _Resolver(run, snapshot, config, time, log)
                found = resolver.value(name, chosen.get(name), ())
            table.put(index, name, found, 0 if config is None else config.version)
        if log is not None:
            used, channels = (resolver.used, resolver.channels) if resolver else ({}, set())
            log.signals(run, names, used, {*channels, *own})

    if workers is None:
        # local files: the work is Python and numpy on small arrays, and threads contending for
        # the GIL were slower than one (bench/signals_many.py); on an object store each read
        # waits on the network, and threads overlap the waits
        workers = _REMOTE_WORKERS if store.parallel_reads else 1
    with ThreadPoolExecutor(workers, thread_name_prefix="labledger-signals") as pool:
        list(pool.map(one, range(len(runs))))  # list(): raise the first error
    numbers = [r.number for r in runs]
    variables = {name: table.variable(name, numbers) for name in names}
    data = xarray.Dataset(variables)
    data.coords["run_id"] = ("run", [r.id for r in runs])
    data.coords["config_version"] = ("run", table.versions)
    for name in names:
        data.coords[f"calibration_{name}"] = ("run", table.calibrations[name])
        data.coords[f"channel_{name}"] = ("run", table.channels[name])
        bad = {numbers[i]: n for i, n in table.nonfinite[name].items()}
        if bad:
            data[name].attrs["nonfinite"] = sum(bad.values())
            shown = ", ".join(f"run {r}: {n}" for r, n in list(bad.items())[:5])
            warnings.warn(
                f"{name} has NaN or inf values ({shown}{', ...' if len(bad) > 5 else ''}); "
                "they are kept, and counted in attrs['nonfinite']",
                DataWarning,
                stacklevel=3,
            )
    return data


class _Table:
    """The (run, time) arrays being filled: one per signal, allocated by the first run to
    finish it; a run whose time axis differs is kept aside and aligned at the end."""

    def __init__(self, n_runs: int, names: list[str]):
        self.n_runs = n_runs
        self.rows: dict[str, np.ndarray] = {}
        self.first: dict[str, Values] = {}
        self.attrs: dict[str, dict[str, Any]] = {}
        self.apart: dict[str, dict[int, Values]] = {n: {} for n in names}
        self.calibrations = {n: [""] * n_runs for n in names}
        self.channels = {n: [""] * n_runs for n in names}  # "" for a computed signal
        self.nonfinite: dict[str, dict[int, int]] = {n: {} for n in names}
        self.versions = [0] * n_runs
        self._lock = threading.Lock()

    def put(self, index: int, name: str, found: Values, version: int) -> None:
        with self._lock:
            if name not in self.rows:
                # empty, not full of NaN: every row is written by its run, or set aside and
                # filled with NaN at the end, and a 28 MB memset costs as much as the reads
                self.rows[name] = np.empty((self.n_runs, found.values.size))
                self.first[name] = found
                self.attrs[name] = {"units": found.unit, "signal": name}
            same = found.same_axis(self.first[name])
            self.calibrations[name][index] = found.attrs.get("calibration", "none")
            self.channels[name][index] = found.attrs.get("channel", "")
            self.versions[index] = version
            bad = nonfinite(found.values)
            if bad:
                self.nonfinite[name][index] = bad
            if not same:
                self.apart[name][index] = found
        if same:
            self.rows[name][index] = found.values  # outside the lock: rows are disjoint

    def variable(self, name: str, numbers: list[int]) -> xarray.DataArray:
        import xarray

        # what is the same for every run; what varies (channel, calibration) is a coordinate
        attrs = {k: v for k, v in self.attrs[name].items() if k in ("units", "signal")}
        time = self.first[name].time
        array = xarray.DataArray(
            self.rows[name],
            dims=("run", "time"),
            coords={"run": numbers, **({"time": time} if time is not None else {})},
            name=name,
            attrs=attrs,
        )
        if not self.apart[name]:
            return array
        for i in self.apart[name]:
            self.rows[name][i] = np.nan
        # some runs have another time axis: align all on the union of times, NaN elsewhere
        on_common_times = [i for i in range(self.n_runs) if i not in self.apart[name]]
        pieces = [array.isel(run=on_common_times)] + [
            xarray.DataArray(
                found.values[np.newaxis],
                dims=("run", "time"),
                coords={"run": [numbers[i]], "time": found.time},
                name=name,
            )
            for i, found in self.apart[name].items()
        ]
        aligned = xarray.concat(pieces, dim="run", join="outer").sel(run=numbers)
        aligned.attrs = attrs
        return aligned


class _Resolver:
    """Resolves names for one run, following expressions and chains, refusing cycles."""

    def __init__(
        self,
        run: Run,
        snapshot: Snapshot,
        config: Configuration,
        time: TimeWindow | None,
        log: reads.ReadLog | None = None,
    ):
        self.run, self.snapshot, self.config = run, snapshot, config
        self.time = _window(time)
        self._done: dict[str, Values] = {}  # signals resolved under their default calibration
        # for provenance: every calibration applied (label, asked for explicitly), channels read
        self.used: dict[str, tuple[str, bool]] = {}
        self.channels: set[str] = set()
        self._pinned = log.pinned.get(run.id, {}) if log is not None else {}

    def value(
        self, name: str, label: str | None, stack: tuple[str, ...], points: int | None = None
    ) -> Values:
        """Signal ``name`` under calibration ``label`` (None: the one in force); with
        ``points``, decimated from its channel's pyramid if it is a wired channel under a
        monotonic calibration (else whole: the caller decimates)."""
        spec = self.config.description.signals.get(name)
        if spec is None:
            raise NotFound(self._unknown(name))
        if name in stack:
            raise CalibrationError(
                f"run {self.run.number}: signal {name} depends on itself "
                f"({' -> '.join([*stack, name])}); fix the calibrations involved"
            )
        if label is None and name in self._done:
            return self._done[name]  # P_inj and Probe_P both read RF_Pfwd, say: read it once
        stack = (*stack, name)
        cal = self._calibration(name, spec.calibration, label)
        if cal is not None and cal.kind == "expression":
            found = self._expression(cal, stack)
        elif cal is not None and cal.params.get("input"):
            source = self.value(cal.params["input"], None, stack)
            found = Values(
                cal.apply(source.values), source.axis, cal.unit, {"input": cal.params["input"]}
            )
        else:
            found = self._wired(name, cal, points)
        if spec.unit and found.unit != spec.unit:
            found = self._convert(found, spec.unit, name)
        found.attrs.setdefault("calibration", cal.label if cal else "none")
        if cal is not None:
            found.attrs.setdefault("calibration_kind", cal.kind)
        if label is None and _DECIMATED not in found.attrs:
            self._done[name] = found
        return found

    def _calibration(self, name: str, default: str | None, label: str | None) -> Calibration | None:
        if label is not None:
            found = by_label(self.snapshot, label)
            if found.name != default:
                raise InvalidArgument(
                    f"{label} is a version of {found.name}, not of {name}'s calibration "
                    f"({default or 'it has none'}): give {default or 'no calibration'}@N"
                )
            self.used[found.name] = (found.label, True)
            return found
        if default is None:
            return None
        if default in self._pinned:  # a reproduction reads what the record says was read
            found = by_label(self.snapshot, self._pinned[default])
            self.used[found.name] = (found.label, False)
            return found
        current = in_force(self.snapshot, default, self.run.number, self.run.started)
        if current is None:
            raise NotFound(
                f"run {self.run.number}: signal {name} needs calibration {default}, and no version "
                f"of it is in force for this run; add one with `labledger calib add {default} ...`"
                + (
                    " or read it with calibration='NAME@N'"
                    if default in self.snapshot.calibrations
                    else ""
                )
            )
        self.used[current.name] = (current.label, False)
        return current

    def _wired(self, name: str, cal: Calibration | None, points: int | None = None) -> Values:
        run, config = self.run, self.config
        port = config.wiring.get(name)
        if port is None:
            raise NotFound(
                f"run {run.number}: signal {name} was not wired (configuration version "
                f"{config.version}); see `labledger config show --run {run.number}`"
            )
        key = config.description.channel(port)
        if key not in run.channels:
            raise NotFound(
                f"run {run.number}: signal {name} is wired to {port}, but the run has no channel "
                f"{key!r}; check the wiring with `labledger config show --run {run.number}`"
            )
        channel = run.channels[key]
        self.channels.add(key)
        if channel.ndim != 1 or not np.issubdtype(channel.dtype, np.number):
            raise NotFound(f"run {run.number}: channel {key} of {name} is not a 1-D numeric array")
        axis = channel.axes[0] if channel.axes else None
        rows = _selected(channel, name, self.time)
        scaling = channel.own_scaling()
        affine = cal.affine() if cal is not None and not cal.params.get("input") else None
        # a preview from the pyramid keeps the extremes of the raw values: the same samples
        # as the calibrated ones' only through a monotonic scaling and calibration (a table
        # or a polynomial may fold a peak into a dip: those are read whole)
        monotonic = not callable(scaling) and (cal is None or affine is not None)
        previewed = _previewed(channel, rows, points) if monotonic else None
        attrs: dict[str, Any] = {"channel": key, "port": port}
        if previewed is not None:
            kept, raw, decimated = previewed
            attrs.update(decimated)
        else:
            kept, raw = None, channel[rows]
        if isinstance(scaling, tuple) and affine is not None:
            # one pass over the data: (raw * slope + intercept) * gain + offset, folded
            slope, intercept = scaling
            gain, offset = affine
            values = np.multiply(raw, slope * gain, dtype=np.float64)
            if intercept * gain + offset:
                values += intercept * gain + offset
        else:
            if scaling is None:
                volts = raw
            elif isinstance(scaling, tuple):
                volts = raw * scaling[0] + scaling[1]
            else:
                volts = scaling(raw)
            values = cal.apply(volts) if cal is not None else np.asarray(volts, dtype=np.float64)
        unit = cal.unit if cal is not None else str(channel.attrs.get("unit_string") or "V")
        return Values(values, _times(axis, rows, channel.shape[0], kept), unit, attrs)

    def _expression(self, cal: Calibration, stack: tuple[str, ...]) -> Values:
        inputs = {n: self.value(n, None, stack) for n in cal.inputs}
        first = next(iter(inputs.values()))
        aligned = {}
        for n, v in inputs.items():
            if v.same_axis(first) or v.time is None or first.time is None:
                aligned[n] = v.values
            else:  # another sampling: onto the first input's times, NaN outside its own
                aligned[n] = np.interp(first.time, v.time, v.values, left=np.nan, right=np.nan)
        unit = expression_unit(cal, {n: v.unit for n, v in inputs.items()})
        values = np.asarray(cal.evaluate(aligned), dtype=np.float64)
        read = ", ".join(f"{n} ({v.attrs.get('calibration', 'none')})" for n, v in inputs.items())
        found = Values(values, first.axis, unit, {"inputs": read})
        if cal.unit and cal.unit != unit:
            found = self._convert(found, cal.unit, cal.label)
        return found

    def _convert(self, found: Values, unit: str, what: str) -> Values:
        try:
            scale = factor(found.unit, unit)
        except ValueError:
            raise CalibrationError(
                f"run {self.run.number}: {what} comes out in {found.unit}, which cannot be "
                f"expressed in {unit}; fix the calibration's unit"
            ) from None
        if scale != 1.0:
            found.values = found.values * scale
        found.unit = unit
        return found

    def _unknown(self, name: str) -> str:
        known = list(self.config.description.signals)
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        close += [k for k in known if k.lower() == name.lower() and k not in close]
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        return (
            f"run {self.run.number} has no signal {name!r}{hint} (the testbed description "
            f"names {len(known)}; list them with `labledger config show --run {self.run.number}`)"
        )


def _window(time: Any) -> TimeWindow | None:
    """A time window as given, checked: two times in s (either may be None), in order."""
    if time is None:
        return None
    try:
        t0, t1 = (None if t is None else float(t) for t in time)
    except (TypeError, ValueError):
        raise InvalidArgument(f"time={time!r}: give (start, stop) in s, e.g. (0.1, 0.2)") from None
    if any(t is not None and not math.isfinite(t) for t in (t0, t1)):
        raise InvalidArgument(f"time={time!r}: the times must be finite numbers of s")
    if t0 is not None and t1 is not None and t0 > t1:
        raise InvalidArgument(f"time=({t0:g}, {t1:g}): the start is after the stop")
    return t0, t1


def _configuration(snapshot: Snapshot, run: Run, names: Sequence[str]) -> Configuration | None:
    """The run's configuration; None if the archive has no testbed description yet and every
    name is a channel key (read in its own scaling), else the reason in one line."""
    try:
        return resolve(snapshot, run.number, run.started, run._row.config_version)
    except NotFound as none:
        for name in names:
            try:
                run.channels[name]
            except NotFound as missing:
                raise NotFound(
                    f"{missing}; {none} to name signals, or give a channel key"
                ) from None
        return None


def _is_channel(config: Configuration, run: Run, name: str) -> bool:
    """Whether ``name`` is read as a channel key rather than a signal of the description (a
    signal wins)."""
    return name not in config.description.signals and name in run.channels


def _own_scaling(
    run: Run, key: str, calibration: str | None, time: TimeWindow | None, points: int | None
) -> Values:
    """Channel ``key`` of ``run`` as a signal in its own scaling (the DAQ's NI/DAQmx scales,
    applied by npTDMS): what a signal is on an archive without a testbed description. With
    ``points``, decimated from the channel's pyramid under a linear scaling (else whole)."""
    if calibration is not None:
        raise InvalidArgument(
            f"run {run.number}: {key} is a channel, read in its own scaling; a calibration "
            "applies to a signal of the testbed description"
        )
    channel = run.channels[key]
    if channel.ndim != 1 or not np.issubdtype(channel.dtype, np.number):
        raise NotFound(f"run {run.number}: channel {key} is not a 1-D numeric array")
    rows = _selected(channel, key, time)
    scaling = channel.own_scaling()
    attrs: dict[str, Any] = {"channel": channel.key, "calibration": "none"}
    attrs["scaling"] = "own (npTDMS)"
    previewed = _previewed(channel, rows, points) if isinstance(scaling, tuple) else None
    if previewed is not None and isinstance(scaling, tuple):
        kept, raw, decimated = previewed
        slope, intercept = scaling  # as Channel.scaled computes it, on the kept samples only
        values = np.asarray(raw * slope + intercept, dtype=np.float64)
        attrs.update(decimated)
    else:
        kept, values = None, np.asarray(channel.scaled(rows), dtype=np.float64)
    axis = channel.axes[0] if channel.axes else None
    return Values(
        values, _times(axis, rows, channel.shape[0], kept), channel.scaled_unit or "", attrs
    )


def _selected(channel: Channel, name: str, time: TimeWindow | None) -> slice:
    """The rows of a 1-D ``channel`` (read as signal ``name``) within ``time``."""
    run, axis = channel.run, channel.axes[0] if channel.axes else None
    if time is None:
        return slice(None)
    if axis is None or not axis.step:
        raise InvalidArgument(
            f"run {run.number}: {name} (channel {channel.key}) has no time axis to select a "
            "window on; read it whole"
        )
    rows = _rows(time, axis.start or 0.0, axis.step, channel.shape[0])
    if rows.start >= rows.stop and channel.shape[0]:
        first = axis.start or 0.0
        last = first + (channel.shape[0] - 1) * axis.step
        raise InvalidArgument(
            f"run {run.number}: {name} has no samples in time={time}; its record "
            f"runs from {first:g} to {last:g} s"
        )
    return rows


def _rows(window: TimeWindow, start: float, step: float, length: int) -> slice:
    t0, t1 = window
    i0 = 0 if t0 is None else int(np.ceil((t0 - start) / step - 1e-9))
    i1 = length if t1 is None else int(np.floor((t1 - start) / step + 1e-9)) + 1
    return slice(min(max(i0, 0), length), min(max(i1, 0), length))


def _to_xarray(
    run: Run, name: str, config: Configuration | None, found: Values
) -> xarray.DataArray:
    spec = config.description.signals.get(name) if config is not None else None
    attrs = {
        "units": found.unit,
        "long_name": (spec.description if spec else None) or name,
        "signal": name,
        "run": run.number,
        "run_id": run.id,
        **({"config_version": config.version} if config is not None else {}),
        **found.attrs,
    }
    return signal_array(found.values, found.time, name, attrs)
