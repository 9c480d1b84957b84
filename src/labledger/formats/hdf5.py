"""HDF5 and NeXus files, read with h5py.

The whole tree is kept: groups with their attributes (``NX_class`` among them), datasets as
channels keyed by their path, soft and external links recorded as links, and a second path to an
object already seen (an HDF5 hard link, as NeXus uses for NXdata) recorded as a link to the
first. What cannot be read is reported, not fatal: the rest of the file is ingested.

A file is hostile until proven otherwise, and HDF5 reads other files for it if asked: external
links, datasets whose raw data lie in other files (external storage) and virtual datasets over
other files' datasets. None of them is followed: each is kept in the tree as a link naming its
target files, and said not read; only a virtual dataset whose every source is a plain dataset
of a file of the same ingest (a detector's master file given with its data files) is read, as
data. Reading a dataset is the only thing that makes HDF5 open another file, and only datasets
checked here are read.
"""

from __future__ import annotations

import math
import os
import posixpath
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import h5py
import numpy as np
from h5py import h5d

from labledger.errors import BadInput, first_line
from labledger.formats.base import (
    Axis,
    ChannelInfo,
    Fill,
    Source,
    StatedNumber,
    Unreadable,
    tree_node,
)
from labledger.formats.limits import Limits, refusal
from labledger.formats.values import (
    decode_text,
    scalars,
    single,
    to_json,
    to_scalar,
    without_metadata,
)
from labledger.times import parse_time

SIGNATURE = b"\x89HDF\r\n\x1a\n"
_BLOCK_BYTES = 32 << 20  # rows read per h5py call
_MAX_VIRTUAL_SOURCES = 100_000  # mappings of one virtual dataset checked before it is read
_NAMED = 20  # target files named in a link node; the rest counted
_OWN = "ingest reads only the files it is given"


class Hdf5Format:
    name: ClassVar[str] = "hdf5"
    description: ClassVar[str] = "HDF5 and NeXus (h5py)"

    def sniff(self, head: bytes, path: Path) -> bool:
        if head.startswith(SIGNATURE):
            return True
        # after a user block the superblock sits at 512, 1024, 2048, ...: let HDF5 look
        return len(head) >= 512 and h5py.is_hdf5(str(path))

    def open(
        self, path: Path, limits: Limits | None = None, together: frozenset[Path] = frozenset()
    ) -> Hdf5Source:
        """Describe the file within ``limits``; its virtual datasets may read the files
        ``together`` (real paths: the files of the same ingest), and no other file."""
        try:
            f = h5py.File(path, "r")
        except OSError as exc:
            text = str(exc)
            if "truncated file" in text:
                raise BadInput(
                    f"{path}: the HDF5 file is truncated (shorter than its superblock says: its "
                    "writer never finished or the copy is incomplete); nothing of it can be read"
                ) from None
            raise BadInput(f"{path}: HDF5 cannot open it ({text.split('(')[0].strip()})") from None
        try:
            return Hdf5Source(path, f, limits or Limits(), together)
        except BaseException:
            f.close()
            raise


class Hdf5Source(Source):
    def __init__(
        self, path: Path, f: h5py.File, limits: Limits, together: frozenset[Path] = frozenset()
    ):
        super().__init__(path=path, format="hdf5")
        self._file = f
        self._nodes, self._limits = 0, limits
        self._together = together
        self._folder = Path(os.path.abspath(path)).parent  # where HDF5 looks for relative names
        self._virtual: set[str] = set()  # virtual datasets checked to read: see _dataset
        self._seen: dict[tuple[int, int], str] = {}
        self._written: dict[str, set[int] | None] = {}  # see _fill_only
        self.metadata.update(scalars(f.attrs))
        self.tree = tree_node(path.name, "file", _attrs(f, "", self.problems))
        self._walk(f, "", self.tree)
        self.started, self.ended = self._times()
        self.numbers = self._entry_identifiers()

    def _walk(self, group: h5py.Group, prefix: str, node: dict[str, Any]) -> None:
        if prefix.count("/") >= self._limits.depth:  # before Python's own stack runs out
            what = f"nests groups over {self._limits.depth} deep ({prefix[:60]}...)"
            raise refusal(self.path, "", what, "depth", self._limits.depth)
        try:
            names = list(group)
        except Exception as exc:  # a damaged group index
            self.problems.append(
                f"{prefix or '/'}: its members cannot be listed ({first_line(exc)})"
            )
            return
        for name in names:
            path = f"{prefix}/{name}" if prefix else name
            self._count()
            try:
                link = group.get(name, getlink=True)
            except Exception as exc:
                self.problems.append(f"{path}: cannot be read ({first_line(exc)})")
                continue
            if isinstance(link, h5py.SoftLink):
                # a relative target is relative to the group holding the link
                target = posixpath.normpath(posixpath.join("/" + prefix, link.path)).lstrip("/")
                node["children"].append(
                    tree_node(name, "link", target=target, link="soft", path=link.path)
                )
                continue
            if isinstance(link, h5py.ExternalLink):
                node["children"].append(
                    tree_node(
                        name,
                        "link",
                        target=link.path.lstrip("/"),
                        file=link.filename,
                        link="external",
                    )
                )
                continue
            try:
                obj = group[name]
                info = h5py.h5o.get_info(obj.id)
            except Exception as exc:
                self.problems.append(f"{path}: cannot be read ({first_line(exc)})")
                continue
            identity = (info.fileno, info.addr)
            if identity in self._seen:  # a second name for an object already kept
                node["children"].append(
                    tree_node(name, "link", target=self._seen[identity], link="hard")
                )
                continue
            self._seen[identity] = path
            attrs = _attrs(obj, path, self.problems)
            if isinstance(obj, h5py.Group):
                child = tree_node(name, "group", attrs)
                node["children"].append(child)
                self.metadata.update(scalars(obj.attrs, f"{path}@"))
                self._walk(obj, path, child)
            elif isinstance(obj, h5py.Dataset):
                try:
                    elsewhere = self._elsewhere(obj, path)
                except Exception as exc:  # a damaged layout message: neither read nor followed
                    self.problems.append(f"{path}: cannot be read ({first_line(exc)})")
                    continue
                if elsewhere is not None:
                    node["children"].append(tree_node(name, "link", attrs, **elsewhere))
                    continue
                if obj.is_virtual:  # every source checked: read with the search pinned here
                    obj = _reopen(group, name, self._folder)
                    self._virtual.add(path)
                self._add_dataset(obj, path, name, attrs, node, _nxdata_axes(node))
            else:
                self.problems.append(f"{path}: a named datatype, not data; kept in the raw file")

    def _count(self) -> None:
        """Refuse a file of more objects than the limit as soon as the walk passes it (their
        tree alone would outgrow memory)."""
        self._nodes += 1
        if self._nodes > self._limits.nodes:
            what = f"holds over {self._limits.nodes} groups, datasets and links"
            raise refusal(self.path, "", what, "nodes", self._limits.nodes)

    def _add_dataset(
        self,
        ds: h5py.Dataset,
        path: str,
        name: str,
        attrs: dict[str, Any],
        node: dict[str, Any],
        axes: dict[str, list[str]],
    ) -> None:
        if ds.shape is None:  # a null dataspace: a dataset with a type and no value at all
            node["children"].append(
                tree_node(name, "dataset", attrs, empty=True, dtype=ds.dtype.str)
            )
            return
        dtype = _storable_dtype(ds)
        if dtype is None:
            self.problems.append(
                f"{path}: HDF5 type {ds.dtype} is not supported; kept in the raw file only"
            )
            node["children"].append(tree_node(name, "dataset", attrs, shape=list(ds.shape)))
            return
        shape = tuple(ds.shape)
        info = ChannelInfo(
            key=path,
            segments=tuple(path.split("/")),
            shape=shape,
            dtype=dtype,
            attrs=attrs,
            axes=_axes(path, shape, axes.get(name), node),
            chunk_bytes=math.prod(ds.chunks) * ds.dtype.itemsize if ds.chunks else None,
        )
        self._written[path] = _fill_only(ds, info)
        self.channels.append(info)
        node["children"].append(
            tree_node(name, "channel", attrs, key=path, shape=list(shape), dtype=dtype.str)
        )
        if ds.size is not None and ds.size <= 1 and ds.shape is not None:
            try:
                value = to_scalar(ds[()])
            except Exception:
                value = None  # reported when its data is read
            if value is not None:
                self.metadata.setdefault(path, value)

    def _elsewhere(self, ds: h5py.Dataset, path: str) -> dict[str, Any] | None:
        """For a dataset whose values lie in other files and are not read: its link node's
        fields (the files named, why not read), reported among the problems. None for a
        dataset to read: its own bytes, or a virtual dataset over files of this ingest."""
        plist = ds.id.get_create_plist()
        shape = list(ds.shape) if ds.shape is not None else None
        if plist.get_external_count():
            slots = [plist.get_external(i) for i in range(plist.get_external_count())]
            files = list(dict.fromkeys(decode_text(name) for name, _, _ in slots))
            self.problems.append(f"{path}: raw data stored in {_named(files)}, not read: {_OWN}")
            return _link("external storage", files, "", shape, ds.dtype, _OWN)
        if not ds.is_virtual:
            return None
        count = plist.get_virtual_count()
        if count > _MAX_VIRTUAL_SOURCES:
            why = f"it has {count} mappings, over the {_MAX_VIRTUAL_SOURCES} checked"
            self.problems.append(f"{path}: a virtual dataset, not read: {why}")
            return _link("virtual", [], "", shape, ds.dtype, why)
        sources = list(
            dict.fromkeys(
                (plist.get_virtual_filename(i), plist.get_virtual_dsetname(i)) for i in range(count)
            )
        )
        unreadable = self._unreadable_sources(sources)
        if unreadable is None:
            return None
        files = list(dict.fromkeys(name for name, _ in sources))
        self.problems.append(
            f"{path}: a virtual dataset over {_named(files)}, not read: {unreadable}"
        )
        target = sources[0][1].lstrip("/") if sources else ""
        return _link("virtual", files, target, shape, ds.dtype, unreadable)

    def _unreadable_sources(self, sources: list[tuple[str, str]]) -> str | None:
        """Why a virtual dataset's ``(file, dataset)`` sources cannot all be read from the
        files of this ingest, or None when they can."""
        if os.environ.get("HDF5_VDS_PREFIX"):  # HDF5 would search there first
            return "HDF5_VDS_PREFIX is set: HDF5 would look for its sources there first"
        opened: dict[Path, h5py.File] = {}
        try:
            for file_name, dataset in sources:
                if "%" in file_name or "%" in dataset:  # printf-style names, one file per block
                    return f"its source names are patterns ({file_name}:{dataset})"
                if file_name == ".":
                    f = self._file
                else:
                    real = Path(os.path.realpath(_source_file(self._folder, file_name)))
                    if real not in self._together:
                        return f"its source file {file_name} was not given with it ({_OWN})"
                    if real not in opened:
                        try:
                            opened[real] = h5py.File(real, "r")
                        except OSError:
                            return f"its source file {file_name} is not an HDF5 file"
                    f = opened[real]
                why = _not_plain(f, dataset)
                if why is not None:
                    return f"its source {file_name}:{dataset} {why}"
            return None
        finally:
            for f in opened.values():
                f.close()

    def _times(self) -> tuple[Any, Any]:
        """Acquisition start and end: the first NXentry's start_time/end_time, else file_time.
        Read from the datasets kept as channels only: those were checked to lie in this file."""
        for top in self.tree["children"]:
            if top["kind"] != "group":
                continue
            try:
                start = self._value(f"{top['name']}/start_time")
                end = self._value(f"{top['name']}/end_time")
            except Exception:
                continue
            if start is not None:
                return parse_time(start), (parse_time(end) if end is not None else None)
        return parse_time(self._file.attrs.get("file_time")), None

    def _entry_identifiers(self) -> list[StatedNumber]:
        """NeXus: each top-level NXentry's ``entry_identifier``, the facility's number for what
        the entry records. Taken from the metadata: a one-value dataset kept as a channel, read
        while walking (a dataset of many values, or one lying in another file, states none)."""
        found = []
        for top in self.tree["children"]:
            attrs = top.get("attrs", {})
            if top["kind"] != "group" or single(attrs.get("NX_class")) != "NXentry":
                continue
            key = f"{top['name']}/entry_identifier"
            value = self.metadata.get(key)
            if value is not None:
                found.append(StatedNumber(f"NeXus {key}", value))
        return found

    def _value(self, key: str) -> Any:
        return self._dataset(key)[()] if key in self._written else None

    def _dataset(self, key: str) -> h5py.Dataset:
        """A channel's dataset, opened again by its path (hard links only), one at a time:
        HDF5 holds ~15 kB for each open dataset, 300 MB for a file of 20,000. A virtual one
        with the search for its sources pinned where they were checked."""
        if key in self._virtual:
            return _reopen(self._file, key, self._folder)
        return self._file[key]

    def blocks(self) -> Iterator[tuple[str, np.ndarray | Fill | Unreadable]]:
        for info in self.channels:
            ds = self._dataset(info.key)
            written = self._written[info.key]
            try:
                if written is not None:
                    yield from ((info.key, b) for b in _written_blocks(ds, written))
                    continue
                yield from ((info.key, b) for b in _read_blocks(ds, info.dtype))
            except Exception as exc:
                yield info.key, Unreadable(first_line(exc))

    def close(self) -> None:
        self._file.close()


def _source_file(folder: Path, name: str) -> str:
    """The file HDF5 opens for a virtual source named ``name`` in a file of ``folder``. HDF5
    tries an absolute name as written, then its last part, as every other name, in the
    HDF5_VDS_PREFIX folders (refused before), the access list's prefix (``folder``: see
    :func:`_reopen`), the file's folder, the working directory: the first file that opens
    wins, so the first that exists here is the one checked."""
    if os.path.isabs(name):
        if os.path.exists(name):
            return name
        name = os.path.basename(name)
    return os.path.join(folder, name)


def _not_plain(f: h5py.File, name: str) -> str | None:
    """Why dataset ``name`` of ``f`` is not a plain dataset of that file (reached by hard
    links only, its values stored in it), or None."""
    obj: h5py.Group | h5py.Dataset = f
    for part in [p for p in name.split("/") if p]:
        if not isinstance(obj, h5py.Group):
            return "is not a dataset"
        link = obj.get(part, getlink=True)
        if link is None:
            return "does not exist"
        if not isinstance(link, h5py.HardLink):  # a soft or external link may lead anywhere
            return "is reached through a link"
        obj = obj[part]
    if not isinstance(obj, h5py.Dataset):
        return "is not a dataset"
    if obj.is_virtual or obj.id.get_create_plist().get_external_count():
        return "stores its values in other files"
    return None


def _reopen(group: h5py.Group, name: str, folder: Path) -> h5py.Dataset:
    """``group[name]``, a virtual dataset whose sources were checked, with HDF5's search for
    them pinned to ``folder``, where they were checked, before any other place it would try."""
    dapl = h5py.h5p.create(h5py.h5p.DATASET_ACCESS)
    dapl.set_virtual_prefix(os.fsencode(folder))
    return h5py.Dataset(h5py.h5d.open(group.id, name.encode("utf-8", "surrogateescape"), dapl))


def _link(
    kind: str, files: list[str], target: str, shape: list[int] | None, dtype: np.dtype, why: str
) -> dict[str, Any]:
    """The fields of the link node kept for a dataset whose values lie in ``files``, not
    read: the first files named, the rest counted, and the reason."""
    return {
        "link": kind,
        "file": files[0] if files else "",
        "files": files[:_NAMED],
        "files_total": len(files) if len(files) > _NAMED else None,
        "target": target,
        "shape": shape,
        "dtype": dtype.str,
        "reason": why,
    }


def _named(files: list[str]) -> str:
    more = len(files) - _NAMED
    return ", ".join(files[:_NAMED]) + (f" and {more} more" if more > 0 else "")


def _nxdata_axes(group: dict[str, Any]) -> dict[str, list[str]]:
    """For an NXdata group's tree node: its signal's name and the names of its axes."""
    attrs = group.get("attrs", {})
    if single(attrs.get("NX_class")) != "NXdata" or "signal" not in attrs or "axes" not in attrs:
        return {}
    names = attrs["axes"] if isinstance(attrs["axes"], list) else [attrs["axes"]]
    names = [str(n) for n in names]
    if len(names) == 1 and ":" in names[0]:  # the old "x:y" spelling
        names = names[0].split(":")
    return {str(single(attrs["signal"])): [n.strip() for n in names]}


def _axes(
    path: str, shape: tuple[int, ...], names: list[str] | None, group: dict[str, Any]
) -> list[Axis]:
    """NeXus NXdata: the signal's dimensions are named by the group's ``axes`` attribute."""
    if not names:
        return []
    prefix = path.rsplit("/", 1)[0]
    members = {c["name"]: c for c in group.get("children", [])}
    axes = []
    for i, name in enumerate(names[: len(shape)]):
        if name in (".", "") or name not in members:
            axes.append(Axis(name=f"dim_{i}"))
            continue
        unit = single(members[name].get("attrs", {}).get("units"))
        axes.append(Axis(name=name, channel=f"{prefix}/{name}", unit=str(unit) if unit else None))
    return axes


def _read_blocks(ds: h5py.Dataset, dtype: np.dtype) -> Iterator[np.ndarray]:
    if dtype.kind == "O":  # variable-length strings: as text, in UTF-8 or the Latin-1 of old files
        raw = np.asarray(ds[()], dtype=object)
        texts = [decode_text(v) if isinstance(v, bytes) else str(v) for v in raw.ravel()]
        yield np.array(texts, dtype=object).reshape(raw.shape)
        return
    if ds.ndim == 0 or ds.size == 0:
        yield np.asarray(ds[()])
        return
    step = _rows_per_block(ds)
    for i in range(0, ds.shape[0], step):
        yield ds[i : i + step]


def _fill_only(ds: h5py.Dataset, info: ChannelInfo) -> set[int] | None:
    """Which parts of a dataset the file holds, where it holds less than it declares: the
    indexes along the first axis of its chunks that were ever written (an empty set when none
    were, or a contiguous dataset has no storage yet); None when it is all there to be read
    (and for virtual, external or compact storage). The rest is the fill value, which the store
    keeps by writing nothing; ``info`` learns how many values are held, and that fill value."""
    if ds.ndim == 0 or ds.size == 0 or info.dtype.kind not in "biufcM" or info.dtype.fields:
        return None  # text and compounds are held whole, fill values and all
    plist = ds.id.get_create_plist()
    layout = plist.get_layout()
    if plist.get_external_count() or layout not in (h5d.CHUNKED, h5d.CONTIGUOUS):
        return None
    if layout == h5d.CONTIGUOUS:
        if ds.id.get_storage_size():
            return None
        written: set[int] = set()
        info.held = 0
    else:
        chunks = ds.chunks
        grid = [-(-n // c) for n, c in zip(ds.shape, chunks)]
        count = ds.id.get_num_chunks()
        if count == math.prod(grid):
            return None
        written = set()
        if hasattr(ds.id, "chunk_iter"):  # HDF5 1.14: one pass over the chunk index
            ds.id.chunk_iter(lambda chunk: written.add(chunk.chunk_offset[0] // chunks[0]))
        else:
            written.update(
                ds.id.get_chunk_info(i).chunk_offset[0] // chunks[0] for i in range(count)
            )
        info.held = min(ds.size, count * math.prod(chunks))
    fill = np.asarray(ds.fillvalue, info.dtype)[()]
    info.fill = None if fill == 0 else fill
    return written


def _written_blocks(ds: h5py.Dataset, written: set[int]) -> Iterator[np.ndarray | Fill]:
    """The chunk rows ``written`` read in blocks, the rows between them as :class:`Fill`."""
    length = ds.shape[0]
    height = ds.chunks[0] if ds.chunks else length
    step = _rows_per_block(ds)
    if step >= height:  # whole rows of chunks: each chunk is decompressed once
        step -= step % height
    # else fewer rows than a chunk's height (a wide sparse dataset): HDF5 decompresses each
    # chunk again for every block, slower but bounded; a row of chunks could be gigabytes
    done = 0
    for first, last in _runs(sorted(written)):
        start, stop = first * height, min(length, (last + 1) * height)
        if start > done:
            yield Fill(start - done)
        for i in range(start, stop, step):
            yield ds[i : min(stop, i + step)]
        done = stop
    if done < length:
        yield Fill(length - done)


def _rows_per_block(ds: h5py.Dataset) -> int:
    """Rows read per h5py call: ``_BLOCK_BYTES`` of them, at least one (the store's writer takes
    whole rows), whatever the file's chunks."""
    row_bytes = max(1, ds.dtype.itemsize * math.prod(ds.shape[1:]))
    return max(1, _BLOCK_BYTES // row_bytes)


def _runs(indexes: list[int]) -> Iterator[tuple[int, int]]:
    """Sorted integers as runs of consecutive ones, (first, last) each.

    >>> list(_runs([0, 1, 2, 5, 7, 8]))
    [(0, 2), (5, 5), (7, 8)]
    """
    if not indexes:
        return
    start = prev = indexes[0]
    for i in indexes[1:]:
        if i != prev + 1:
            yield start, prev
            start = i
        prev = i
    yield start, prev


def _storable_dtype(ds: h5py.Dataset) -> np.dtype | None:
    """The type the dataset is kept as, or None: labledger keeps numbers of standard widths,
    text, and compounds of those (not float128, references, opaque or variable-length data)."""
    dt = ds.dtype
    if h5py.check_string_dtype(dt) is not None:
        return np.dtype(object) if dt.kind == "O" else dt
    if _plain(dt):
        return dt
    if dt.kind == "V" and dt.fields and all(_plain(f[0]) for f in dt.fields.values()):
        return without_metadata(dt)  # a compound of plain fields, packed
    return None


def _plain(dt: np.dtype) -> bool:
    sizes = {"b": (1,), "i": (1, 2, 4, 8), "u": (1, 2, 4, 8), "f": (2, 4, 8), "c": (8, 16)}
    return dt.kind == "S" or dt.itemsize in sizes.get(dt.kind, ())


def _attrs(obj: Any, path: str, problems: list[str]) -> dict[str, Any]:
    found = {}
    for name in obj.attrs:
        try:
            found[name] = to_json(obj.attrs[name])
        except Exception as exc:  # an attribute of a type h5py cannot read
            problems.append(f"{path or '/'}@{name}: attribute cannot be read ({first_line(exc)})")
    return found
