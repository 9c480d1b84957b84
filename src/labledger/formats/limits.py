"""What a raw file may declare before ingest does any work for it.

A raw file is hostile until proven otherwise: a 1.4 KB HDF5 file can declare 10^12 values and a
10 MB CSV a million columns. A format checks what it can before reading further (a CSV counts
its columns on its header line); :func:`labledger.formats.bounds.check` then compares what a
source declares (counts, names, the bytes its data decode to) with these limits while the ingest
is only being planned, so a file over one is refused with one line naming the file, the
dataset, the limit and how to raise it, and nothing is written. Values a file declares but
does not hold (HDF5 fill values) cost nothing and count only against ``dataset_elements``.

The defaults are far above any real facility file (a 66 GB detector master file, NeXus files of
hundreds of datasets, TDMS files of thousands of channels); they bound what one ingest can cost.
An archive's settings (the ``limits`` setting, a table of these names) override them, then the
environment (``LABLEDGER_LIMIT_<NAME>``), then the caller (``labledger ingest --limit NAME=N``).
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from labledger.errors import BadInput, InvalidArgument

ENV_PREFIX = "LABLEDGER_LIMIT_"
SETTING = "limits"
MAX_DEPTH = 400  # the deepest tree a JSON encoder takes (node, children, node...: 2 a level)
OBJECT_BYTES = 64  # a variable-length text value held in memory: a Python str and its pointer
_SIZE = re.compile(r"^\s*(\d+)\s*([kmgtp]?)i?b?\s*$", re.I)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


@dataclass(frozen=True)
class Limits:
    """The most a raw file may declare; every field is raised by its name."""

    file_bytes: int = 16 << 40  # the data one file holds, decoded (not its fill values)
    dataset_bytes: int = 4 << 40  # the data one dataset or channel holds, decoded
    dataset_elements: int = 1 << 50  # values a dataset declares, fill values included
    whole_bytes: int = 128 << 20  # a text or compound array, held whole in memory to be stored
    whole_file_bytes: int = 128 << 20  # all the text and compound arrays of one file, together
    chunk_bytes: int = 128 << 20  # one chunk of a file, decoded: HDF5 decompresses it whole
    channels: int = 30_000  # datasets or channels in one file
    nodes: int = 100_000  # groups, datasets, channels and links in one file's tree
    depth: int = 200  # groups nested in groups
    columns: int = 10_000  # columns of a CSV file, counted on its header line
    name_bytes: int = 4096  # one name of a source (a dataset, group, channel or column), UTF-8
    compound_fields: int = 1000  # fields of one compound type

    @classmethod
    def resolve(
        cls,
        settings: Mapping[str, Any] | None = None,
        overrides: Mapping[str, Any] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> Limits:
        """The limits in force: defaults, then the archive's settings, the environment and the
        caller's ``overrides``, each over the one before."""
        environ = os.environ if environ is None else environ
        found: dict[str, int] = {}
        for origin, given in (
            ("the archive's limits setting", dict(settings or {})),
            (
                "the environment",
                {
                    k[len(ENV_PREFIX) :].lower(): v
                    for k, v in environ.items()
                    if k.startswith(ENV_PREFIX)
                },
            ),
            ("--limit", dict(overrides or {})),
        ):
            for name, value in given.items():
                found[_field(name, origin)] = parse_size(value, f"{origin}: {name}")
        if found.get("depth", 0) > MAX_DEPTH:
            raise InvalidArgument(
                f"depth can be raised to {MAX_DEPTH} at most: the catalog keeps a file's tree as "
                "JSON, which nests no deeper"
            )
        return cls(**found)


def parse_size(value: Any, what: str) -> int:
    """A count or a size, as a number or as text with a binary unit (``4T``, ``512MiB``).

    >>> parse_size("4T", "x"), parse_size(10_000, "x")
    (4398046511104, 10000)
    """
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    m = _SIZE.match(str(value)) if isinstance(value, str) else None
    if m is None:
        raise InvalidArgument(f"{what}: {value!r} is not a count or a size such as 4T or 512M")
    return int(m[1]) * _UNITS[m[2].lower()]


def _field(name: str, origin: str) -> str:
    known = [f.name for f in dataclasses.fields(Limits)]
    key = name.strip().lower().replace("-", "_")
    if key not in known:
        raise InvalidArgument(
            f"{origin}: unknown limit {name!r}; the limits are {', '.join(known)}"
        )
    return key


def refusal(path: object, where: str, what: str, limit: str, value: int) -> BadInput:
    """The one line that refuses a file over a limit, saying how to raise it."""
    return BadInput(
        f"{path}: {where}{what}, over the limit {limit}={value}; if the file is genuine, raise it "
        f"with `labledger ingest --limit {limit}=N`, the archive's {SETTING} setting or "
        f"{ENV_PREFIX}{limit.upper()}=N"
    )


def check_name(path: object, name: str, limits: Limits) -> None:
    """Refuse a name of a source longer than ``name_bytes`` (in UTF-8)."""
    size = len(name.encode("utf-8", "surrogatepass"))
    if size > limits.name_bytes:
        raise refusal(
            path, "", f"a name of {size} bytes ({name[:40]!r}...)", "name_bytes", limits.name_bytes
        )


def memory_bytes(block: np.ndarray) -> int:
    """The memory ``block`` takes while ingest holds it: its buffer, and for text values held as
    Python objects, an object and a pointer each and their characters (long text costs more)."""
    if block.dtype.kind != "O":
        return block.nbytes
    return OBJECT_BYTES * block.size + sum(len(v) for v in block.flat if isinstance(v, str | bytes))
