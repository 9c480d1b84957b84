"""Where a run's objects live in the store.

A run is one folder, ``runs/<run id>/``: its raw files byte for byte under ``sources/<n>/``,
and the arrays of each under ``data/<n>/`` as a Zarr v3 hierarchy that mirrors the file's own
tree (``n`` counts the files of the run from 0, so two files never write into each other).
Nothing there is visible to users until the catalog commit that names the folder, so a crashed
ingest leaves at most a folder nobody refers to.
"""

from __future__ import annotations

from collections.abc import Sequence

RUNS = "runs"


def run_prefix(run_id: str) -> str:
    return f"{RUNS}/{run_id}"


def source_key(prefix: str, position: int, name: str) -> str:
    """The key of a run's raw file; the position keeps two files of the same name apart."""
    return f"{prefix}/sources/{position}/{node_name(name)}"


def data_path(prefix: str, position: int | None = None, segments: Sequence[str] = ()) -> str:
    """The Zarr path of the run's data, of a file's data, or of a channel or group in it."""
    parts = [f"{prefix}/data"] if position is None else [f"{prefix}/data/{position}"]
    return "/".join([*parts, *(node_name(s) for s in segments)])


def node_name(segment: str) -> str:
    """A source's name made safe as one Zarr node name and one object-key segment: "/" and "%"
    are percent-encoded, and so are the names Zarr reserves ("", ".", "..", a leading "__").

    >>> node_name("PXI M6251"), node_name("a/b"), node_name(".."), node_name("__x")
    ('PXI M6251', 'a%2Fb', '%2E%2E', '%5F_x')
    """
    name = segment.replace("%", "%25").replace("/", "%2F").replace("\\", "%5C")
    if name in ("", ".", ".."):
        return "%2E" * len(name) if name else "%00"
    if name.startswith("__"):
        name = "%5F" + name[1:]
    return name
