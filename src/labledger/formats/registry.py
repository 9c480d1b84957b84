"""The registry of raw formats: the ``labledger.formats`` entry points, and how a file's format
is told from its first bytes."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from labledger.errors import BadInput, NotFound
from labledger.formats.base import Format, OwnScaling
from labledger.plugins import failed, load

ENTRY_POINT_GROUP = "labledger.formats"
HEAD_BYTES = 4096
_HDF4 = b"\x0e\x03\x13\x01"
_NETCDF3 = (b"CDF\x01", b"CDF\x02", b"CDF\x05")


@cache
def formats() -> dict[str, Format]:
    """Every installed format by name, labledger's own (tdms, hdf5, csv) and any a lab added.

    >>> sorted(formats())[:3]
    ['csv', 'hdf5', 'tdms']
    """
    return load(ENTRY_POINT_GROUP, lambda cls: cls())


def get(name: str) -> Format:
    """The format called ``name``; the error lists the known ones."""
    try:
        return formats()[name]
    except KeyError:
        known = ", ".join(sorted(formats()))
        raise BadInput(f"unknown format {name!r}; known formats: {known}") from None


def detect(path: Path, head: bytes) -> Format:
    """The format of the file at ``path`` whose first bytes are ``head``."""
    if head.startswith(_HDF4):
        raise BadInput(
            f"{path}: this is an HDF4 file, and HDF4 is not supported; convert it to HDF5 "
            "(h4toh5 from the HDF Group) and ingest the result"
        )
    if head[:4] in _NETCDF3:
        raise BadInput(
            f"{path}: this is a classic netCDF file, which is not supported; convert it to "
            "netCDF-4/HDF5 (nccopy -k nc4) and ingest the result"
        )
    for fmt in formats().values():
        if fmt.sniff(head, path):
            return fmt
    known = ", ".join(f"{f.name} ({f.description})" for f in formats().values())
    raise BadInput(f"{path}: unknown format; labledger reads {known}; or pass --format")


def own_scaling(name: str, attrs: dict[str, Any]) -> OwnScaling | None:
    """How a stored channel's raw values become its DAQ's unit, as the format ``name`` that
    read it says (a TDMS channel's NI scaling properties, kept in its attributes); None if the
    format stores physical values. A format that is not loaded here is refused, never taken
    for one without scaling: its raw counts would pass for volts.

    >>> linear = {"Scale_Type": "Linear", "Linear_Slope": 2.0, "Linear_Y_Intercept": 0.5,
    ...           "Linear_Input_Source": 0xFFFFFFFF}  # the raw values
    >>> own_scaling("tdms", {"NI_Scaling_Status": "unscaled", "NI_Number_Of_Scales": 1,
    ...                      **{f"NI_Scale[0]_{k}": v for k, v in linear.items()}})
    (2.0, 0.5)
    """
    fmt = formats().get(name)
    if fmt is None:
        why = failed(ENTRY_POINT_GROUP).get(name, "it is not installed")
        raise NotFound(
            f"the {name!r} format is not loaded here ({why}): the scaling of its channels "
            "cannot be read; install or fix the package that provides it"
        )
    scaling = getattr(fmt, "scaling", None)  # optional: most formats store physical values
    return scaling(attrs) if scaling is not None else None
