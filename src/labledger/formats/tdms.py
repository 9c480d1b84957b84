"""LabVIEW TDMS files, read with npTDMS.

What is stored is what the DAQ wrote: for DAQmx raw data the integers, with the scaling
properties kept as channel attributes (npTDMS or labledger can apply them later, and a
recalibration never has to undo one). Waveform timing (``wf_start_time``, ``wf_start_offset``,
``wf_increment``) becomes the channel's time axis.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from nptdms import TdmsFile
from nptdms.log import log_manager

from labledger.errors import BadInput
from labledger.formats.base import Axis, ChannelInfo, Source, Unreadable, first_line, tree_node
from labledger.formats.values import LABVIEW_EPOCH, parse_time, to_json, to_scalar

LEAD_IN_BYTES = 28  # the fixed header of every TDMS segment


class TdmsFormat:
    name: ClassVar[str] = "tdms"
    description: ClassVar[str] = "LabVIEW TDMS (npTDMS), including DAQmx raw data"

    def sniff(self, head: bytes, path: Path) -> bool:
        return head[:4] in (b"TDSm", b"TDSh")

    def open(self, path: Path) -> TdmsSource:
        with open(path, "rb") as f:
            if f.read(4) == b"TDSh":
                raise BadInput(
                    f"{path}: this is a TDMS index file; ingest the .tdms file it indexes"
                )
        try:
            with _damage(path):
                tdms = TdmsFile.open(str(path))
        except BadInput:
            raise
        except Exception as exc:  # npTDMS raises bare ValueError/struct.error on damage
            raise BadInput(f"{path}: not a readable TDMS file ({first_line(exc)})") from None
        try:
            if tdms.file_status.incomplete_final_segment:
                raise BadInput(_TRUNCATED.format(path=path, why="its last segment ends early"))
            if path.stat().st_size < LEAD_IN_BYTES or not (tdms.properties or tdms.groups()):
                raise BadInput(_TRUNCATED.format(path=path, why="not even one whole segment"))
            return TdmsSource(path, tdms)
        except BaseException:
            tdms.close()
            raise


class TdmsSource(Source):
    def __init__(self, path: Path, tdms: TdmsFile):
        super().__init__(path=path, format="tdms")
        self._tdms = tdms
        self._keys: dict[tuple[str, str, Any], str] = {}  # (group, channel, scaler) -> key
        root = tree_node(path.name, "file", to_json(dict(tdms.properties)))
        self.metadata.update(_scalars(tdms.properties, ""))
        starts, ends = [], []
        for group in tdms.groups():
            node = tree_node(group.name, "group", to_json(dict(group.properties)))
            root["children"].append(node)
            self.metadata.update(_scalars(group.properties, f"{group.name}@"))
            for channel in group.channels():
                attrs = to_json(dict(channel.properties))
                for key, dtype, scaler in _stored_arrays(group.name, channel):
                    self._keys[group.name, channel.name, scaler] = key
                    axis = _time_axis(channel.properties)
                    info = ChannelInfo(
                        key=key,
                        segments=(group.name, channel.name)
                        + (() if scaler is None else (f"scaler{scaler}",)),
                        shape=(len(channel),),
                        dtype=dtype,
                        attrs=attrs,
                        axes=[axis] if axis else [],
                    )
                    self.channels.append(info)
                    node["children"].append(
                        tree_node(
                            info.segments[-1] if scaler is not None else channel.name,
                            "channel",
                            attrs,
                            key=key,
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
                        for scaler, data in raw.scaler_data.items():
                            key = self._keys.get((group, name, scaler))
                            if key is None:
                                key = self._keys[group, name, None]
                            yield key, data
                    elif raw.data is not None and (group, name, None) in self._keys:
                        yield self._keys[group, name, None], raw.data

    def close(self) -> None:
        self._tdms.close()


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


def _stored_arrays(group: str, channel: Any) -> list[tuple[str, np.dtype, Any]]:
    """The arrays a channel becomes: one, or one per DAQmx scaler when it has several."""
    key = f"{group}/{channel.name}"
    scalers = getattr(channel, "scaler_data_types", None) or {}
    if len(scalers) > 1:
        return [(f"{key}/scaler{s}", np.dtype(t.nptype), s) for s, t in sorted(scalers.items())]
    if len(scalers) == 1:
        return [(key, np.dtype(next(iter(scalers.values())).nptype), None)]
    data_type = channel.data_type
    if data_type is None or (len(channel) == 0 and data_type.nptype is None):
        return []  # a channel that only carries properties
    if data_type.__name__ == "String":
        return [(key, np.dtype(object), None)]
    if data_type.__name__ == "TimeStamp":
        return [(key, np.dtype("datetime64[us]"), None)]
    if data_type.nptype is None:
        return []
    return [(key, np.dtype(data_type.nptype), None)]


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


def _scalars(props: dict[str, Any], prefix: str) -> dict[str, Any]:
    found = {}
    for name, value in props.items():
        scalar = to_scalar(value)
        if scalar is not None:
            found[f"{prefix}{name}"] = scalar
    return found
