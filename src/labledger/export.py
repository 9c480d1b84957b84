"""Export a run to files people open by hand: HDF5 (NeXus classes where the source had them) or
CSV, both with the run's values in physical units beside the raw ones.

HDF5: the source's tree comes back as it was: groups with their attributes, datasets with their
values, attributes and types, links as links. Data are copied a shard at a time, so a run of any
size exports in bounded memory. HDF5 has no time type: times are written as int64 counts with a
``units`` attribute ("microseconds since 1970-01-01T00:00:00", as in CF conventions). Beside the
raw integers, an NXentry ``signals`` holds one NXdata per calibrated signal (its values with
``units``, its time axis in s), so a collaborator without labledger gets volts and amperes.

CSV: a folder, one file per channel group (a TDMS group, an HDF5 group, a CSV file), its time
axis first, each channel in its own scaling where it has one, with the unit in the column's
header (``ai3 [V]``); where the archive has a testbed description, the calibrated signals by
name in ``signals.csv`` (one more file per other time axis). ``# key: value`` lines at the top
say where the values came from, as labledger's own CSV reader takes them back.

The signals are those of the testbed description in force for the run (``run.signal(name)``,
each read whole); on an archive without a description, the channels that have their own
NI/DAQmx scaling (``run.channels[key].scaled()``). Either way a file is complete or not there.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import h5py
import numpy as np
import pyarrow as pa
from pyarrow import csv as pacsv

from labledger.errors import InvalidArgument, LabledgerError, NotFound, first_line
from labledger.formats.base import walk_tree
from labledger.formats.csv import unit_in_name
from labledger.store import StoredArray

if TYPE_CHECKING:
    import xarray

    from labledger.runs import Channel, Run

FORMATS = ("hdf5", "csv")
_COMPRESS_ABOVE = 64 << 10  # smaller datasets stay contiguous, as h5py writes them by default
_UNITS = {"s": "seconds", "ms": "milliseconds", "us": "microseconds", "ns": "nanoseconds"}
_CSV_ROWS = 1 << 16  # rows formatted at a time: a channel of any length in bounded memory
_CSV_KINDS = "biufM"  # numbers, booleans and times have a CSV form; text and blobs are left out
_NEXUS_NAME = re.compile(r"[^A-Za-z0-9_.]")  # NeXus names: letters, digits, "_" and "."


@dataclass(frozen=True)
class Exported:
    """What :func:`export` wrote: ``files``, the ``signals`` in physical units (names of the
    testbed description, or channel keys read in their own scaling) and those ``skipped``,
    with the reason each could not be read for this run."""

    files: tuple[Path, ...]
    signals: tuple[str, ...] = ()
    skipped: dict[str, str] = field(default_factory=dict)


def export(
    run: Run, path: str | os.PathLike[str], format: str = "hdf5", *, force: bool = False
) -> Exported:
    """Write ``run`` to ``path`` in ``format``: ``hdf5``, a file; ``csv``, a folder of files.
    What was there is refused unless ``force``; the export is complete or not there at all.

    >>> import tempfile
    >>> import labledger as ll
    >>> from labledger.sim import write_shot
    >>> folder = Path(tempfile.mkdtemp())
    >>> la = ll.init(folder / "archive")
    >>> _ = la.ingest([write_shot(folder, 1001)])
    >>> done = export(la.runs[1001], folder / "shot.h5")
    >>> done.files[0].name, done.signals[3]
    ('shot.h5', 'PXI M6251/ai3')
    >>> [p.name for p in export(la.runs[1001], folder / "csv", "csv").files]
    ['PXI M6251.csv', 'PXI 6133.csv']
    >>> la.close()
    """
    if format not in FORMATS:
        raise InvalidArgument(f"cannot export to {format!r}; formats: {', '.join(FORMATS)}")
    target = Path(path)
    if not target.parent.is_dir():
        raise InvalidArgument(f"cannot write {target}: the folder {target.parent} does not exist")
    if target.exists() or target.is_symlink():
        if not force:
            raise InvalidArgument(
                f"{target} exists already: give another path, or replace it with --force "
                "(force=True)"
            )
        if format == "csv" and not target.is_dir():
            raise InvalidArgument(f"{target} is a file; a CSV export is a folder: give a folder")
        if format == "csv" and not _an_export(target):
            raise InvalidArgument(
                f"{target} holds more than a CSV export of labledger; --force replaces only an "
                "earlier export: give another folder"
            )
        if format == "hdf5" and target.is_dir():
            raise InvalidArgument(f"{target} is a folder; an HDF5 export is a file: give a file")
    if not len(run.channels):
        raise InvalidArgument(
            f"run {run.number} has no channels to export (its files held no arrays; see "
            f"`labledger show {run.number}`)"
        )
    physical = _Physical(run)
    if format == "csv":
        files = _export_csv(run, target, physical)
    else:
        _export_hdf5(run, target, physical)
        files = [target]
    return Exported(tuple(files), tuple(physical.read), dict(physical.skipped))


def _export_hdf5(run: Run, target: Path, physical: _Physical) -> None:
    partial = target.with_name(target.name + ".partial")
    try:
        with h5py.File(partial, "w") as f:
            for where, source in _placed(f, run):
                _write_node(where, source.tree, run)
            f.attrs["labledger_run"] = run.number
            f.attrs["labledger_run_id"] = run.id
            for where, source in _placed(f, run):  # a soft link may name what follows it
                for node, at in walk_tree(source.tree):
                    if node["kind"] == "link":
                        _make_link(where, at, node)
            _write_signals(f, physical)  # last: its name must be free of every link's too
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def _placed(f: h5py.File, run: Run) -> list[tuple[h5py.Group, Any]]:
    """Where each raw file's tree goes: the root for a run of one file, else a group per file
    (named by the file, and by its position too where two files share a name)."""
    sources = run._sources
    if len(sources) == 1:
        return [(f, sources[0])]
    names = [s.name for s in sources]
    placed = []
    for source in sources:
        name = source.name if names.count(source.name) == 1 else f"{source.position}:{source.name}"
        placed.append((f.require_group(name), source))
    return placed


def _write_node(group: h5py.Group, node: dict[str, Any], run: Run) -> None:
    _set_attrs(group, node.get("attrs", {}))
    for child in node.get("children", []):
        kind, name = child["kind"], child["name"]
        if kind == "group":
            _write_node(group.create_group(name), child, run)
        elif kind == "channel":
            _write_dataset(group, name, run.channels[child["key"]])
            _set_attrs(group[name], child.get("attrs", {}))
        elif kind == "dataset" and child.get("empty"):  # HDF5's null dataspace, as it was
            group.create_dataset(name, data=h5py.Empty(np.dtype(child["dtype"])))
            _set_attrs(group[name], child.get("attrs", {}))


def _write_dataset(group: h5py.Group, name: str, channel: Channel) -> None:
    array = channel.array
    dtype = channel.dtype
    if dtype.kind in "OT":  # variable-length text
        values = np.asarray(array[...], dtype=object)
        group.create_dataset(name, data=values, dtype=h5py.string_dtype())
        return
    stored = np.dtype(np.int64) if dtype.kind == "M" else dtype
    if not channel.shape:
        group.create_dataset(name, data=np.asarray(array[()]).view(stored))
    else:
        big = channel.nbytes > _COMPRESS_ABOVE
        chunks = tuple(min(c, n) or 1 for c, n in zip(array.chunks, channel.shape))
        fill = getattr(array, "fill", None)
        ds = group.create_dataset(
            name,
            shape=channel.shape,
            dtype=stored,
            chunks=chunks if big else None,
            compression="gzip" if big else None,
            compression_opts=1 if big else None,
            shuffle=big,
            fillvalue=None if fill is None else np.asarray(fill, dtype).view(stored),
        )
        if isinstance(array, StoredArray):  # rows never written stay HDF5's fill value: free
            for start, stop in array.written_rows():
                ds[start:stop] = np.asarray(array[start:stop]).view(stored)
        else:
            row = 0
            for block in array.iter_blocks():
                block = np.asarray(block)
                if block.size:
                    ds[row : row + len(block)] = block.view(stored)
                row += len(block)
    if dtype.kind == "M":
        unit = np.datetime_data(dtype)[0]
        group[name].attrs["units"] = f"{_UNITS.get(unit, unit)} since 1970-01-01T00:00:00"


def _make_link(where: h5py.Group, path: str, node: dict[str, Any]) -> None:
    if "reason" in node:  # a dataset whose values lie in other files: not read, not exported
        return
    if node.get("link") == "external":
        where[path] = h5py.ExternalLink(node["file"], "/" + node["target"])
        return
    target = f"{where.name.rstrip('/')}/{node['target']}"
    if node.get("link") == "hard" and target in where.file:
        where[path] = where.file[target]
    else:  # a relative link as the source wrote it; an absolute one, moved with its file
        written = node.get("path", "")
        where[path] = h5py.SoftLink(written if written and written[0] != "/" else target)


def _set_attrs(obj: h5py.HLObject, attrs: dict[str, Any]) -> None:
    for key, value in attrs.items():
        if value is None:
            continue
        if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            obj.attrs.create(key, value, dtype=h5py.string_dtype())
        else:
            try:
                obj.attrs[key] = value
            except (TypeError, ValueError):  # a nested or mixed value: keep its text
                obj.attrs[key] = str(value)


# -- values in physical units --------------------------------------------------------------------


class _Physical:
    """The run's values in physical units, read one at a time: the signals of the testbed
    description in force for it, else the channels that have their own scaling. Each read is
    noted in ``read``; a signal that cannot be read for this run (not wired, no calibration in
    force, its channel missing) in ``skipped`` with the reason, and the export goes on."""

    def __init__(self, run: Run):
        self.run = run
        self.config_version: int | None = None
        try:
            config = run.machine.config
        except NotFound:  # no description (yet, or for this run): the DAQ's own scaling
            self.names = [key for key in run.channels if _own_scaling(run.channels[key])]
            self.described = False
        else:
            self.names = list(config.description.signals)
            self.config_version = config.version
            self.described = True
        self.read: list[str] = []
        self.skipped: dict[str, str] = {}

    def __iter__(self) -> Iterator[xarray.DataArray]:
        for name in self.names:
            try:
                found = self.run.signal(name)
            except LabledgerError as exc:
                self.skipped[name] = first_line(exc)
                continue
            self.read.append(name)
            yield found


def _own_scaling(channel: Channel) -> bool:
    return (
        channel.ndim == 1
        and np.issubdtype(channel.dtype, np.number)
        and channel.own_scaling() is not None
    )


def _described(array: xarray.DataArray) -> dict[str, Any]:
    """How a signal was resolved (calibration, channel, configuration...), for its NXdata."""
    skip = {"units", "signal", "run", "run_id", "long_name"}
    return {
        k: v for k, v in array.attrs.items() if k not in skip and isinstance(v, (str, int, float))
    }


def _write_signals(f: h5py.File, physical: _Physical) -> None:
    """An NXentry of NXdata groups, one per signal: its values with ``units``, its time in s."""
    entry: h5py.Group | None = None
    for array in physical:
        if entry is None:
            entry = _signals_entry(f, physical)
        name = _free(entry, _NEXUS_NAME.sub("_", str(array.name)))
        group = entry.create_group(name)
        group.attrs["NX_class"] = "NXdata"
        group.attrs["signal"] = name
        values = group.create_dataset(name, data=array.values, **_layout(array.values.nbytes))
        values.attrs["units"] = str(array.attrs.get("units", ""))
        values.attrs["long_name"] = str(array.attrs.get("long_name", array.name))
        if "time" in array.coords:
            time = group.create_dataset(
                "time", data=array["time"].values, **_layout(array.values.nbytes)
            )
            time.attrs["units"] = "s"
            group.attrs.create("axes", ["time"], dtype=h5py.string_dtype())
            group.attrs["time_indices"] = 0
        else:  # samples without a time axis: NeXus's "no axis"
            group.attrs.create("axes", ["."], dtype=h5py.string_dtype())
        group.attrs["labledger_signal"] = str(array.name)
        _set_attrs(group, _described(array))
        entry.attrs.setdefault("default", name)
    if physical.skipped:
        entry = entry if entry is not None else _signals_entry(f, physical)
        notes = [f"{name}: {why}" for name, why in physical.skipped.items()]
        entry.attrs.create("not_exported", notes, dtype=h5py.string_dtype())
    if entry is not None and "default" not in f.attrs:
        f.attrs["default"] = entry.name.lstrip("/")


def _signals_entry(f: h5py.File, physical: _Physical) -> h5py.Group:
    entry = f.create_group(_free(f, "signals"))
    entry.attrs["NX_class"] = "NXentry"
    if physical.described:
        entry.attrs["labledger_config_version"] = physical.config_version
        entry.attrs["description"] = "signals of the testbed description, calibrated"
    else:
        entry.attrs["description"] = "channels in their own scaling (NI/DAQmx, by npTDMS)"
    return entry


def _layout(nbytes: int) -> dict[str, Any]:
    big = nbytes > _COMPRESS_ABOVE
    return {"compression": "gzip", "compression_opts": 1, "shuffle": True} if big else {}


def _free(where: h5py.Group | set[str], name: str) -> str:
    """``name``, or ``name-2``, ``name-3``... whichever is not taken yet in ``where``."""
    found, n = name, 1
    while found in where:
        n += 1
        found = f"{name}-{n}"
    return found


# -- CSV ----------------------------------------------------------------------------------------


@dataclass
class _Column:
    label: str  # "name [unit]"
    read: Any  # rows (a slice) -> a 1-D array


@dataclass
class _Table:
    name: str  # the file's name, without .csv
    length: int
    notes: list[tuple[str, Any]]  # "# key: value" lines
    columns: list[_Column]


def _an_export(folder: Path) -> bool:
    """Whether ``folder`` holds only what a CSV export writes (each file says its run id), so
    that --force may replace it without losing anything else."""
    for entry in folder.iterdir():
        if entry.is_symlink() or not entry.is_file() or entry.suffix != ".csv":
            return False
        with entry.open("rb") as f:
            if b"\n# run_id: " not in f.read(4096):
                return False
    return True


def _export_csv(run: Run, target: Path, physical: _Physical) -> list[Path]:
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)  # what a killed export left
    partial.mkdir()
    try:
        taken: set[str] = set()
        written = [_write_csv(partial, t, taken) for t in _channel_tables(run)]
        if physical.described:
            written += [_write_csv(partial, t, taken) for t in _signal_tables(run, physical)]
        else:  # the channels' own scaling is what their files hold already
            physical.read = list(physical.names)
        if target.exists():  # --force: the old folder goes only once the new one is whole
            replaced = target.with_name(target.name + ".replaced")
            shutil.rmtree(replaced, ignore_errors=True)
            os.replace(target, replaced)
            os.replace(partial, target)
            shutil.rmtree(replaced)
        else:
            os.replace(partial, target)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return [target / name for name in written]


def _channel_tables(run: Run) -> Iterator[_Table]:
    """A table per channel group and time axis: the 1-D channels of one group of one raw file
    that share their sampling."""
    several = len(run._sources) > 1
    for source in run._sources:
        groups: dict[tuple[str, Any], list[tuple[str, Channel]]] = {}
        left_out: list[str] = []
        for node, path in walk_tree(source.tree):
            if node["kind"] != "channel" or "key" not in node:
                continue
            channel = run.channels[node["key"]]
            if channel.ndim != 1 or channel.dtype.kind not in _CSV_KINDS:
                left_out.append(channel.key)
                continue
            group = path.rpartition("/")[0]
            axis = channel.axes[0] if channel.axes else None
            # a time column of the file is one of its channels, beside those it is the axis of
            regular = axis if axis is not None and axis.step else None
            sampling = (
                channel.shape[0],
                *((regular.start, regular.step) if regular is not None else ()),
            )
            groups.setdefault((group, sampling), []).append((path.rpartition("/")[2], channel))
        stem = Path(source.name).stem
        for (group, _), members in groups.items():
            name = ".".join(p for p in (stem if several or not group else "", group) if p)
            notes: list[tuple[str, Any]] = [("run", run.number), ("run_id", run.id)]
            notes += [("source", source.name), ("group", group or "/")]
            if left_out:
                notes.append(("not in CSV (not 1-D numbers)", ", ".join(left_out)))
                left_out = []
            first = members[0][1]
            columns = _time_column(first) + [_channel_column(n, c) for n, c in members]
            yield _Table(name.replace("/", "."), first.shape[0], notes, columns)


def _time_column(channel: Channel) -> list[_Column]:
    """The regular time axis of ``channel`` as a column, computed as ``run.signal`` does."""
    axis = channel.axes[0] if channel.axes else None
    if axis is None or not axis.step:
        return []
    start, step = axis.start or 0.0, axis.step

    def read(rows: slice) -> np.ndarray:
        first, stop, _ = rows.indices(channel.shape[0])
        time = np.arange(first, stop, dtype=np.float64)
        time *= step
        time += start
        return time

    return [_Column(_label(axis.name, axis.unit or "s"), read)]


def _channel_column(name: str, channel: Channel) -> _Column:
    if _own_scaling(channel):
        return _Column(_label(name, channel.scaled_unit), channel.scaled)
    unit = channel.attrs.get("units") or channel.attrs.get("unit")
    return _Column(_label(name, str(unit) if unit else None), channel.__getitem__)


def _signal_tables(run: Run, physical: _Physical) -> list[_Table]:
    """The signals in tables by time axis: ``signals``, then ``signals-2``... for signals
    sampled otherwise (another DAQ device, say). Each signal is read whole."""
    by_axis: dict[tuple[Any, ...], list[xarray.DataArray]] = {}
    for array in physical:
        time = array["time"].values if "time" in array.coords else None
        axis = (
            (array.size,)
            if time is None or not time.size
            else (array.size, float(time[0]), float(time[-1]))
        )
        by_axis.setdefault(axis, []).append(array)
    tables: list[_Table] = []
    for arrays in by_axis.values():
        notes: list[tuple[str, Any]] = [("run", run.number), ("run_id", run.id)]
        notes.append(("config_version", physical.config_version))
        for array in arrays:
            how = ", ".join(f"{k} {v}" for k, v in _described(array).items())
            notes.append((str(array.name), how))
        if not tables:
            notes += [(name, f"not exported: {why}") for name, why in physical.skipped.items()]
        columns = (
            [_Column("time [s]", _whole(arrays[0]["time"].values))]
            if "time" in arrays[0].coords
            else []
        )
        columns += [
            _Column(_label(str(a.name), a.attrs.get("units")), _whole(a.values)) for a in arrays
        ]
        tables.append(_Table("signals", arrays[0].size, notes, columns))
    return tables


def _whole(values: np.ndarray) -> Any:
    return lambda rows: values[rows]


def _label(name: str, unit: str | None) -> str:
    """A column's header with its unit, unless the name says it already (``U (V)``)."""
    return name if not unit or unit_in_name(name) == unit.strip() else f"{name} [{unit}]"


def _write_csv(folder: Path, table: _Table, taken: set[str]) -> str:
    """``table`` as ``folder/NAME.csv``, formatted a block of rows at a time by pyarrow
    (numbers in their shortest exact form)."""
    name = _free(taken, _file_name(table.name)) + ".csv"
    taken.add(name.removesuffix(".csv"))
    columns = table.columns
    labels = [c.label for c in columns]
    with open(folder / name, "wb") as f:
        for key, value in table.notes:
            line = re.sub(r"[\r\n]+", " ", f"{key}: {value}")  # a note stays one line
            f.write(f"# {line}\n".encode())
        options = pacsv.WriteOptions(include_header=True, quoting_style="needed")
        for start in range(0, max(table.length, 1), _CSV_ROWS):
            rows = slice(start, min(start + _CSV_ROWS, table.length))
            block = pa.table({f"c{i}": np.asarray(c.read(rows)) for i, c in enumerate(columns)})
            pacsv.write_csv(block.rename_columns(labels), f, options)
            options = pacsv.WriteOptions(include_header=False, quoting_style="needed")
    return name


def _file_name(name: str) -> str:
    """A file name on every system: no separators, NUL or characters Windows refuses."""
    cleaned = re.sub(r'[\x00-\x1f<>:"/\\|?*]', "_", name).strip(" .")
    return cleaned or "channels"
