"""Where a run's objects live in the store.

A run is one folder, ``runs/<run id>/``: its raw files byte for byte under ``sources/<n>/``,
and the arrays of each under ``data/<n>/`` as a Zarr v3 hierarchy that mirrors the file's own
tree (``n`` counts the files of the run from 0, so two files never write into each other).
Nothing there is visible to users until the catalog commit that names the folder, so a crashed
ingest leaves at most a folder nobody refers to.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

RUNS = "runs"
_ODD = re.compile("[\0\udc80-\udcff]")  # NUL, and the bytes os.fsdecode could not decode
_MAX_SEGMENT = 255  # bytes in one file name, on every local filesystem labledger runs on
_KEPT = 128  # bytes of a long name kept readable before its hash


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
    are percent-encoded, and so are the names Zarr reserves ("", ".", "..", a leading "__"),
    NUL and the bytes of a file name that are not UTF-8. A name longer than a file name may be
    (255 bytes) keeps its start and ends in ``%H`` and a hash of the whole: the same name always
    gives the same node, and no short name gives a ``%H`` of its own ("%" is escaped).

    >>> node_name("PXI M6251"), node_name("a/b"), node_name(".."), node_name("__x")
    ('PXI M6251', 'a%2Fb', '%2E%2E', '%5F_x')
    >>> len(node_name("x" * 300).encode()), node_name("x" * 300)[126:130], node_name("a\\0b")
    (178, 'xx%H', 'a%00b')
    """
    name = segment.replace("%", "%25").replace("/", "%2F").replace("\\", "%5C")
    name = _ODD.sub(lambda m: f"%{_byte(m[0]):02X}", name)
    if name in ("", ".", ".."):
        return "%2E" * len(name) if name else "%"  # no other name gives a bare "%"
    if name.startswith("__"):
        name = "%5F" + name[1:]
    encoded = name.encode("utf-8")
    if len(encoded) > _MAX_SEGMENT:
        head = encoded[:_KEPT].decode("utf-8", "ignore")  # whole characters only
        digest = hashlib.sha256(segment.encode("utf-8", "surrogatepass")).hexdigest()
        name = f"{head}%H{digest[:48]}"
    return name


def _byte(char: str) -> int:
    """The byte a NUL or a surrogate escape (an undecodable byte of a file name) stands for."""
    return ord(char) - 0xDC00 if char != "\0" else 0


def pyramid_path(store_path: str) -> str:
    """Where the min/max pyramid of the array at ``store_path`` (a run's ``data/...``) is kept:
    the same path below the run's ``pyramids/`` instead of its ``data/``, a Zarr hierarchy of
    its own (a Zarr v3 array has no children, and a node beside the array would show among the
    file's own nodes to anyone browsing ``data/``).

    >>> pyramid_path("runs/0193/data/0/PXI M6251/ai3")
    'runs/0193/pyramids/0/PXI M6251/ai3'
    """
    head, found, rest = store_path.partition("/data/")
    if not found or not head.startswith(f"{RUNS}/") or "/" in head[len(RUNS) + 1 :]:
        raise ValueError(f"{store_path}: not the path of a run's array (runs/<id>/data/...)")
    return f"{head}/pyramids/{rest}"
