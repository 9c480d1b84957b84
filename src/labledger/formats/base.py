"""What every raw-format reader hands to ingest: the shape of a source, then its data in blocks.

A reader opens one raw file and describes it without reading its bulk data: metadata flattened
to searchable keys, the structure tree as the source has it, the channels with their shapes,
types, attributes and axes. Then :meth:`Source.blocks` streams the data in file order, so that a
file of any size passes through ingest in bounded memory.
"""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np

from labledger.formats.limits import Limits
from labledger.formats.values import to_scalar

# property names that state a run's number (``Shot Number``, ``shot_no``, ``RunNumber``...),
# compared in lower case without spaces, underscores, dashes or dots
NUMBER_PROPERTIES = frozenset({"shot", "shotnumber", "shotno", "runnumber", "runno"})
_SPACING = re.compile(r"[\s_.\-]+")


@dataclass(frozen=True)
class Axis:
    """The physical coordinate along one dimension of a channel.

    Either regular (``start + i * step``, as LabVIEW waveforms have it) or the values of another
    channel of the same run (a CSV time column, a NeXus NXdata axis).
    """

    name: str
    unit: str | None = None
    start: float | None = None
    step: float | None = None
    origin: str | None = None  # the absolute time of index 0, ISO 8601, where the source says
    channel: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Axis:
        return cls(**data)


@dataclass
class ChannelInfo:
    """One array of a source: its key is the source's own path (TDMS ``group/channel``, an HDF5
    dataset path without the leading ``/``, a CSV column name)."""

    key: str
    segments: tuple[str, ...]  # the path's parts, each a name of the source
    shape: tuple[int | None, ...]  # a leading None: the length is known only once read
    dtype: np.dtype
    attrs: dict[str, Any] = field(default_factory=dict)
    axes: list[Axis] = field(default_factory=list)
    # values the file holds, when fewer than its shape declares: the rest were never written
    # and read as ``fill`` (an HDF5 dataset's unallocated chunks); None: all of them
    held: int | None = None
    fill: Any = None  # the value of what was never written; None: zero, as Zarr's default
    # bytes one chunk of the file decodes to: HDF5 decompresses it whole for any read of it
    chunk_bytes: int | None = None


@dataclass(frozen=True)
class StatedNumber:
    """A run number as a source states it in a field of its own format (NeXus
    ``entry/entry_identifier``, a TDMS ``shot`` property): the field, named for a reader, and
    the value as the file holds it. Ingest checks it (a whole number from 0 up) before
    using it, and says why not when it cannot."""

    field: str  # e.g. "NeXus entry1/entry_identifier", "TDMS property 'shot'"
    value: str | int | float | bool


def number_properties(properties: Mapping[str, Any], what: str) -> list[StatedNumber]:
    """The run numbers that ``properties`` (a file's own key-value metadata) state under one of
    the :data:`NUMBER_PROPERTIES` names; ``what`` names them for a reader.

    >>> number_properties({"name": "shot 7", "Shot Number": 1234}, "TDMS property")
    [StatedNumber(field="TDMS property 'Shot Number'", value=1234)]
    """
    found = []
    for name in properties:
        if _SPACING.sub("", str(name)).lower() not in NUMBER_PROPERTIES:
            continue
        try:
            value = to_scalar(properties[name])
        except Exception:  # a property of a type the reader cannot even hand over
            continue
        if value is not None:
            found.append(StatedNumber(f"{what} {str(name)[:80]!r}", value))
    return found


@dataclass
class Unreadable:
    """Yielded by :meth:`Source.blocks` in place of data for a channel that cannot be read."""

    reason: str


@dataclass
class Fill:
    """Yielded by :meth:`Source.blocks` in place of ``rows`` rows that the file never wrote: they
    hold only the channel's fill value, and cost nothing to keep."""

    rows: int


@dataclass
class Source:
    """One opened raw file, described; subclasses stream its data through :meth:`blocks`."""

    path: Path
    format: str
    metadata: dict[str, Any] = field(default_factory=dict)
    tree: dict[str, Any] = field(default_factory=dict)
    channels: list[ChannelInfo] = field(default_factory=list)
    started: datetime | None = None
    ended: datetime | None = None
    problems: list[str] = field(default_factory=list)  # what was found but cannot be ingested
    # the run numbers the file states in its format's own fields, unchecked (see StatedNumber)
    numbers: list[StatedNumber] = field(default_factory=list)

    def blocks(self) -> Iterator[tuple[str, np.ndarray | Fill | Unreadable]]:
        """``(channel key, rows)`` in file order; a channel's blocks come in order along its
        first axis, rows never written as :class:`Fill`. A channel that fails to read yields
        :class:`Unreadable` and the rest goes on.
        """
        raise NotImplementedError

    @property
    def data_bytes(self) -> int:
        """Roughly how many bytes :meth:`blocks` will yield (fill values left out), for progress
        bars."""
        total = 0
        for ch in self.channels:
            if ch.held is not None:
                total += ch.held * ch.dtype.itemsize
            elif all(n is not None for n in ch.shape):
                total += math.prod(ch.shape) * ch.dtype.itemsize  # type: ignore[arg-type]
        return total

    def close(self) -> None:
        """Release the file."""

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Scale(Protocol):
    """A format's own scaling of a channel's stored raw values into its DAQ's unit, where it
    is not a plain ``(slope, intercept)``. ``scalers``: the ids of the raw arrays it reads."""

    scalers: list[int]

    def __call__(
        self, raw: np.ndarray, scalers: Mapping[int, np.ndarray] | None = None
    ) -> np.ndarray: ...


OwnScaling = tuple[float, float] | Scale  # (slope, intercept): a reader folds it into its own


class Format(Protocol):
    """A raw format: found by sniffing a file's first bytes, opened into a :class:`Source`.

    Formats are registered under the ``labledger.formats`` entry-point group; a lab adds its
    own by declaring one in its package's metadata. A format whose files carry their own
    scaling (TDMS's NI scales) may also have ``scaling(attrs) -> OwnScaling | None``, read from
    a stored channel's attributes (:func:`labledger.formats.registry.own_scaling`).
    """

    name: ClassVar[str]
    description: ClassVar[str]

    def sniff(self, head: bytes, path: Path) -> bool:
        """Whether the file whose first bytes are ``head`` is of this format."""
        ...

    def open(
        self, path: Path, limits: Limits | None = None, together: frozenset[Path] = frozenset()
    ) -> Source:
        """Describe the file; raise :class:`labledger.errors.BadInput` if it cannot be read.

        Both keywords are optional for a format (:func:`open_source` passes those its ``open``
        takes). ``limits``: ingest checks the described source against them, and a format may
        refuse before reading on, as a CSV does past too many columns. ``together``: the real
        paths of the files ingested with this one, the only other files a format whose files
        name others (an HDF5 master file over its data files) may read.
        """
        ...


def open_source(
    fmt: Format, path: Path, limits: Limits | None = None, together: frozenset[Path] = frozenset()
) -> Source:
    """``path`` opened by ``fmt``, given ``limits`` and ``together`` if its ``open`` takes them
    (a lab's format written before they existed is opened with the path alone, and so reads
    no other file and checks no limit while reading: ingest checks what it describes)."""
    takes = inspect.signature(fmt.open).parameters
    given: dict[str, Any] = {"limits": limits, "together": together}
    return fmt.open(path, **{k: v for k, v in given.items() if k in takes})


def tree_node(name: str, kind: str, attrs: dict[str, Any] | None = None, **extra: Any) -> dict:
    """A node of a source's structure tree (a plain dict, stored as JSON in the catalog).

    ``kind`` is ``file``, ``group``, ``channel`` (with ``key``, ``shape``, ``dtype``), ``link``
    (with ``target``; ``file`` for an external link, ``path`` as the source wrote it; a
    dataset whose values lie in other files, not read, is a ``link`` "external storage" or
    "virtual" with its ``files`` and the ``reason``) or ``dataset`` (found but not kept as a
    channel: ``empty``, or with the ``problem``).
    """
    node: dict[str, Any] = {"name": name, "kind": kind}
    if attrs:
        node["attrs"] = attrs
    node.update({k: v for k, v in extra.items() if v is not None})
    if kind in ("file", "group"):
        node.setdefault("children", [])
    return node


def walk_tree(node: dict[str, Any], at: str = "") -> Iterator[tuple[dict[str, Any], str]]:
    """Every node below ``node``, depth first, with its path (names joined by "/").

    >>> tree = tree_node("f", "file", children=[tree_node("g", "group")])
    >>> [path for _, path in walk_tree(tree)]
    ['g']
    """
    for child in node.get("children", []):
        path = f"{at}/{child['name']}" if at else child["name"]
        yield child, path
        yield from walk_tree(child, path)
