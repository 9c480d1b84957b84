"""LabVIEW TDMS files, read with npTDMS.

What is stored is what the DAQ wrote: for DAQmx raw data the integers, with the scaling
properties kept as channel attributes (npTDMS or labledger can apply them later, and a
recalibration never has to undo one). A channel that inherits its scaling from its group or
the file (NI allows both) gets a copy of those properties under ``INHERITED_SCALING``.
Waveform timing (``wf_start_time``, ``wf_start_offset``,
``wf_increment``) becomes the channel's time axis. A file property named like a shot or run
number (``shot``, ``Shot Number``) states the run's number.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any, BinaryIO, ClassVar

import numpy as np
from nptdms import TdmsFile
from nptdms.base_segment import RawChannelDataChunk
from nptdms.log import log_manager
from nptdms.scaling import RAW_DATA_INPUT_SOURCE as RAW
from nptdms.scaling import DaqMxScalerScaling, LinearScaling, MultiScaling, get_scaling

from labledger.errors import BadInput, first_line
from labledger.formats.base import (
    Axis,
    ChannelInfo,
    OwnScaling,
    Source,
    Unreadable,
    number_properties,
    tree_node,
)
from labledger.formats.limits import Limits
from labledger.formats.values import scalars, to_json, without_nul
from labledger.times import LABVIEW_EPOCH, parse_time

INHERITED_SCALING = "labledger_inherited_scaling"  # {"from": ..., "properties": {NI_Scale...}}
LEAD_IN_BYTES = 28  # the fixed header of every TDMS segment


class TdmsFormat:
    name: ClassVar[str] = "tdms"
    description: ClassVar[str] = "LabVIEW TDMS (npTDMS), including DAQmx raw data"

    def sniff(self, head: bytes, path: Path) -> bool:
        return head[:4] in (b"TDSm", b"TDSh")

    def scaling(self, attrs: dict[str, Any]) -> OwnScaling | None:
        return daq_scaling(attrs)

    def open(self, path: Path, limits: Limits | None = None) -> TdmsSource:
        # opened as a file, not a path: npTDMS would otherwise read the metadata from a
        # ".tdms_index" beside it, and what is kept and checked is the data file itself
        handle = open(path, "rb")  # noqa: SIM115 (closed with the source)
        try:
            if handle.read(4) == b"TDSh":
                raise BadInput(
                    f"{path}: this is a TDMS index file; ingest the .tdms file it indexes"
                )
            handle.seek(0)
            try:
                with _damage(path):
                    tdms = TdmsFile.open(handle)
            except BadInput:
                raise
            except Exception as exc:  # npTDMS raises bare ValueError/struct.error on damage
                raise BadInput(f"{path}: not a readable TDMS file ({first_line(exc)})") from None
            if tdms.file_status.incomplete_final_segment:
                raise BadInput(_TRUNCATED.format(path=path, why="its last segment ends early"))
            if path.stat().st_size < LEAD_IN_BYTES or not (tdms.properties or tdms.groups()):
                raise BadInput(_TRUNCATED.format(path=path, why="not even one whole segment"))
            return TdmsSource(path, tdms, handle)
        except BaseException:
            handle.close()
            raise


class TdmsSource(Source):
    def __init__(self, path: Path, tdms: TdmsFile, handle: BinaryIO):
        super().__init__(path=path, format="tdms")
        self._tdms = tdms
        self._handle = handle
        self._keys: dict[tuple[str, str, Any], str] = {}  # (group, channel, scaler) -> key
        root = tree_node(path.name, "file", to_json(dict(tdms.properties)))
        self.metadata.update(scalars(tdms.properties))
        # a LabVIEW VI writes the shot number as a file property ("shot", "Shot Number"...)
        self.numbers = number_properties(tdms.properties, "TDMS property")
        starts, ends = [], []
        for group in tdms.groups():
            group_name = without_nul(group.name)  # LabVIEW allows NUL; the catalog does not
            node = tree_node(group_name, "group", to_json(dict(group.properties)))
            root["children"].append(node)
            self.metadata.update(scalars(group.properties, f"{group_name}@"))
            for channel in group.channels():
                stored = _stored_arrays(channel)
                if not stored:
                    continue
                attrs = to_json(dict(channel.properties))
                inherited = _inherited_scaling(channel.properties, group, tdms)
                if inherited:
                    attrs[INHERITED_SCALING] = inherited
                axis = _time_axis(channel.properties)
                parent = node
                if len(stored) > 1:  # DAQmx with several raw scalers: one array per scaler
                    parent = tree_node(without_nul(channel.name), "group", attrs)
                    node["children"].append(parent)
                for scaler, dtype in stored:
                    segments: tuple[str, ...] = (group_name, without_nul(channel.name))
                    if len(stored) > 1:
                        segments += (f"scaler{scaler}",)
                    info = ChannelInfo(
                        key="/".join(segments),
                        segments=segments,
                        shape=(len(channel),),
                        dtype=dtype,
                        attrs=attrs,
                        axes=[axis] if axis else [],
                    )
                    self._keys[group.name, channel.name, scaler if len(stored) > 1 else None] = (
                        info.key
                    )
                    self.channels.append(info)
                    parent["children"].append(
                        tree_node(
                            segments[-1],
                            "channel",
                            attrs if parent is node else None,
                            key=info.key,
                            shape=list(info.shape),
                            dtype=dtype.str,
                        )
                    )
                if axis and axis.origin:
                    t0 = parse_time(np.datetime64(axis.origin))
                    if t0 is not None:
                        starts.append(t0 + timedelta(seconds=axis.start or 0.0))
                        length = (axis.step or 0.0) * len(channel)
                        ends.append(starts[-1] + timedelta(seconds=length))
        self.tree = root
        fallback = parse_time(tdms.properties.get("DateTime"))
        self.started = min(starts) if starts else fallback
        self.ended = max(ends) if ends else None

    def blocks(self) -> Iterator[tuple[str, np.ndarray | Unreadable]]:
        with _damage(self.path):
            yield from self._blocks()

    def _blocks(self) -> Iterator[tuple[str, np.ndarray]]:
        for chunk in self._tdms.data_chunks():
            for group_chunk in chunk.groups():
                for channel_chunk in group_chunk.channels():
                    # the raw (unscaled) values: npTDMS has no public streaming accessor for them
                    raw = channel_chunk._raw_data
                    group, name = group_chunk.name, channel_chunk.name
                    if raw.scaler_data:
                        several = len(raw.scaler_data) > 1
                        for scaler, data in raw.scaler_data.items():
                            key = self._keys.get((group, name, scaler if several else None))
                            if key is not None:
                                yield key, data
                    elif raw.data is not None and (group, name, None) in self._keys:
                        data = raw.data
                        if not isinstance(data, np.ndarray):  # npTDMS hands strings as a list
                            data = np.asarray(data, dtype=object)
                        yield self._keys[group, name, None], data

    def close(self) -> None:
        self._tdms.close()
        self._handle.close()


_TRUNCATED = (
    "{path}: the TDMS file is truncated or damaged ({why}): the writer stopped or the copy is "
    "incomplete; copy it again from the DAQ"
)


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextmanager
def _damage(path: Path) -> Iterator[None]:
    """npTDMS logs a warning and reads on where a file is cut short; refuse such a file (and
    keep npTDMS from printing the warning itself)."""
    logger = logging.getLogger("nptdms")
    console = log_manager.console_handler
    collect = _Collect()
    logger.addHandler(collect)
    propagate, logger.propagate = logger.propagate, False
    level = console.level
    console.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        console.setLevel(level)
        logger.removeHandler(collect)
        logger.propagate = propagate
    if collect.messages:
        raise BadInput(_TRUNCATED.format(path=path, why=collect.messages[0].rstrip(".")))


def _stored_arrays(channel: Any) -> list[tuple[Any, np.dtype]]:
    """The arrays a channel becomes, as (DAQmx scaler id or None, type): none for a channel that
    only carries properties, one per raw scaler for DAQmx data."""
    scalers = getattr(channel, "scaler_data_types", None) or {}
    if scalers:
        return [(s, np.dtype(t.nptype)) for s, t in sorted(scalers.items())]
    data_type = channel.data_type
    if data_type is None:
        return []
    if data_type.__name__ == "String":
        return [(None, np.dtype(object))]
    if data_type.__name__ == "TimeStamp":
        return [(None, np.dtype("datetime64[us]"))]
    if data_type.nptype is None:
        return []
    return [(None, np.dtype(data_type.nptype))]


def _scaling(own: Mapping[str, Any], inherited: Mapping[str, Any] | None = None) -> Any:
    """npTDMS's scaling from NI scaling properties, or BadInput when they are incomplete."""
    try:
        return get_scaling(own, inherited or {}, {})
    except (KeyError, ValueError, TypeError, IndexError) as error:
        raise BadInput(
            f"the NI scaling properties are incomplete or malformed ({first_line(error)}); "
            "read the raw values instead"
        ) from None


def _has_scaling(props: Mapping[str, Any]) -> bool:
    try:
        return _scaling(props) is not None
    except BadInput:  # there, but broken: reading the scaled values says so
        return True


def _scaling_properties(props: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in props.items() if k.startswith(("NI_Scal", "NI_Number_Of_Scales"))}


def _inherited_scaling(props: Mapping[str, Any], group: Any, tdms: TdmsFile) -> dict[str, Any]:
    """The scaling a channel without its own takes from its group, else from the file, as
    npTDMS applies it when it reads the channel; empty when the channel has its own or none
    applies."""
    if _has_scaling(props):
        return {}
    where_group = f"group {without_nul(group.name)}"  # the catalog holds no NUL
    for where, owner in ((where_group, group.properties), ("file", tdms.properties)):
        if _has_scaling(owner):
            return {"from": where, "properties": to_json(_scaling_properties(owner))}
    return {}


def _time_axis(props: dict[str, Any]) -> Axis | None:
    step = props.get("wf_increment")
    if step is None:
        return None
    origin = props.get("wf_start_time")
    if isinstance(origin, np.datetime64) and (np.isnat(origin) or origin == LABVIEW_EPOCH):
        origin = None
    return Axis(
        name=str(props.get("wf_xname") or "time").lower(),
        unit=str(props.get("wf_xunit_string") or "s"),
        start=float(props.get("wf_start_offset", 0.0)),
        step=float(step),
        origin=None if origin is None else str(np.datetime64(origin, "us")),
    )


def daq_scaling(attrs: dict[str, Any]) -> OwnScaling | None:
    """How a stored TDMS channel's raw values become the DAQ's unit (``unit_string``, volts for
    an analog input), from the NI scaling properties kept in its attributes: ``(slope,
    intercept)`` for the usual linear scale, so a reader can fold it into its own arithmetic;
    else a :class:`TdmsScale` (npTDMS's polynomial, table, thermocouple, DAQmx scaler... scalings);
    None for a channel without scaling.
    """
    inherited = attrs.get(INHERITED_SCALING) or {}
    scaling = _scaling(attrs, inherited.get("properties", {}))
    if scaling is None:
        return None
    steps = scaling.scalings if isinstance(scaling, MultiScaling) else [scaling]
    if len(steps) == 1 and isinstance(steps[0], LinearScaling) and steps[0].input_source == RAW:
        return float(steps[0].slope), float(steps[0].intercept)
    return TdmsScale(scaling, steps)


class TdmsScale:
    """npTDMS's own scaling of a channel, applied to stored raw values."""

    def __init__(self, scaling: Any, steps: list[Any]):
        self._scaling = scaling
        # the DAQmx scalers a step reads: npTDMS numbers them like the NI_Scale[i] properties
        self.scalers = sorted({s.scale_id for s in steps if isinstance(s, DaqMxScalerScaling)})

    def __call__(
        self, raw: np.ndarray, scalers: Mapping[int, np.ndarray] | None = None
    ) -> np.ndarray:
        """``raw`` in physical units. A DAQmx channel stored as one array is that array for
        every scaler npTDMS asks for (a channel with several gives them all in ``scalers``)."""
        if scalers is None:
            scalers = dict.fromkeys(self.scalers, raw)
        return np.asarray(self._scaling.scale(RawChannelDataChunk(raw, scalers)))
