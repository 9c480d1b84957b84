"""Export a run to a file people open by hand: HDF5, with NeXus classes where the source had them.

The source's tree comes back as it was: groups with their attributes, datasets with their
values, attributes and types, links as links. Data are copied a shard at a time, so a run of any
size exports in bounded memory.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import h5py
import numpy as np

from labledger.errors import InvalidArgument

if TYPE_CHECKING:
    from labledger.runs import Run

FORMATS = ("hdf5",)
_COMPRESS_ABOVE = 64 << 10  # smaller datasets stay contiguous, as h5py writes them by default


def export(run: Run, path: str | os.PathLike[str], format: str = "hdf5") -> None:
    """Write ``run`` to ``path`` in ``format``; the file is complete or not there at all."""
    if format not in FORMATS:
        raise InvalidArgument(f"cannot export to {format!r}; formats: {', '.join(FORMATS)}")
    target = os.fspath(path)
    partial = f"{target}.partial"
    try:
        with h5py.File(partial, "w") as f:
            sources = run._sources
            if len(sources) == 1:
                _write_node(f, sources[0].tree, run)
            else:  # one group per raw file
                for source in sources:
                    group = f.create_group(source.name)
                    _write_node(group, source.tree, run)
            f.attrs["labledger_run"] = run.number
            f.attrs["labledger_run_id"] = run.id
            for deferred in _links(f, sources):
                deferred()
        os.replace(partial, target)
    except BaseException:
        if os.path.exists(partial):
            os.remove(partial)
        raise


def _write_node(group: h5py.Group, node: dict[str, Any], run: Run) -> None:
    _set_attrs(group, node.get("attrs", {}))
    for child in node.get("children", []):
        kind, name = child["kind"], child["name"]
        if kind == "group":
            _write_node(group.create_group(name), child, run)
        elif kind == "channel":
            _write_dataset(group, name, run.channels[child["key"]])
            _set_attrs(group[name], child.get("attrs", {}))


def _write_dataset(group: h5py.Group, name: str, channel: Any) -> None:
    array = channel.array
    dtype = channel.dtype
    if dtype.kind in "OT":  # variable-length text
        values = np.asarray(array[...], dtype=object)
        group.create_dataset(name, data=values, dtype=h5py.string_dtype())
        return
    if not channel.shape:
        group.create_dataset(name, data=array[()], dtype=dtype)
        return
    big = channel.nbytes > _COMPRESS_ABOVE
    ds = group.create_dataset(
        name,
        shape=channel.shape,
        dtype=dtype,
        chunks=tuple(min(c, n) or 1 for c, n in zip(array.chunks, channel.shape)) if big else None,
        compression="gzip" if big else None,
        compression_opts=1 if big else None,
        shuffle=big,
    )
    row = 0
    for block in array.iter_blocks():
        block = np.asarray(block)
        if block.size:
            ds[row : row + len(block)] = block
        row += len(block)


def _links(f: h5py.File, sources: list[Any]) -> list[Any]:
    """Links are made last: a soft link may name something written after it."""
    made = []
    for source in sources:
        prefix = f"/{source.name}" if len(sources) > 1 else ""

        def visit(node: dict[str, Any], at: str, prefix: str = prefix) -> None:
            for child in node.get("children", []):
                path = f"{at}/{child['name']}"
                if child["kind"] == "group":
                    visit(child, path)
                elif child["kind"] == "link":
                    made.append(lambda c=child, p=path, pre=prefix: _make_link(f, p, c, pre))

        visit(source.tree, prefix)
    return made


def _make_link(f: h5py.File, path: str, node: dict[str, Any], prefix: str) -> None:
    target = f"{prefix}/{node['target']}"
    if node.get("link") == "external":
        f[path] = h5py.ExternalLink(node["file"], "/" + node["target"])
    elif node.get("link") == "hard" and target in f:
        f[path] = f[target]
    else:
        f[path] = h5py.SoftLink(target)


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
