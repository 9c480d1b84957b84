"""Export a run to a file people open by hand: HDF5, with NeXus classes where the source had them.

The source's tree comes back as it was: groups with their attributes, datasets with their
values, attributes and types, links as links. Data are copied a shard at a time, so a run of any
size exports in bounded memory. HDF5 has no time type: times are written as int64 counts with a
``units`` attribute ("microseconds since 1970-01-01T00:00:00", as in CF conventions).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import h5py
import numpy as np

from labledger.errors import InvalidArgument
from labledger.formats.base import walk_tree
from labledger.store import StoredArray

if TYPE_CHECKING:
    from labledger.runs import Channel, Run

FORMATS = ("hdf5",)
_COMPRESS_ABOVE = 64 << 10  # smaller datasets stay contiguous, as h5py writes them by default
_UNITS = {"s": "seconds", "ms": "milliseconds", "us": "microseconds", "ns": "nanoseconds"}


def export(run: Run, path: str | os.PathLike[str], format: str = "hdf5") -> None:
    """Write ``run`` to ``path`` in ``format``; the file is complete or not there at all."""
    if format not in FORMATS:
        raise InvalidArgument(f"cannot export to {format!r}; formats: {', '.join(FORMATS)}")
    target = Path(path)
    if not target.parent.is_dir():
        raise InvalidArgument(f"cannot write {target}: the folder {target.parent} does not exist")
    partial = target.with_name(target.name + ".partial")
    try:
        with h5py.File(partial, "w") as f:
            for where, source in _placed(f, run):
                _write_node(where, source.tree, run)
            f.attrs["labledger_run"] = run.number
            f.attrs["labledger_run_id"] = run.id
            for where, source in _placed(f, run):  # last: a soft link may name what follows it
                for node, at in walk_tree(source.tree):
                    if node["kind"] == "link":
                        _make_link(where, at, node)
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
