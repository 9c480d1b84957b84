"""Following a signal of a live run by name, calibrated, block by block as it arrives.

``run.follow("Langmuir_I")`` finds, with the configuration the run was prepared under, the
stream the signal is wired to and the calibration in force, and applies it to each block: the
same values ``run.signal`` gives once the run is saved. Blocks already trimmed from Redis come
from the run's segments in the store, and a run saved and gone from Redis is read from there
whole: the follower sees one unbroken sequence, and a :class:`~labledger.live.Cursor` to resume
from.

>>> for piece in la.runs.live().follow("Langmuir_I"):              # doctest: +SKIP
...     print(piece.time[0], piece.values.mean(), piece.unit)
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

import labledger.acquire.segments as segments
from labledger.acquire.site import LiveSite
from labledger.errors import InvalidArgument, NotFound
from labledger.live import Block, ChannelSpec, Cursor, Follower, RunInfo, State, Status, run_info
from labledger.machine.calibration import Calibration, by_label, in_force
from labledger.machine.configuration import resolve
from labledger.machine.logs import Snapshot
from labledger.machine.units import factor
from labledger.records import ENDED
from labledger.runs import Run, signal_array
from labledger.store import Store

if TYPE_CHECKING:
    import xarray

_WAIT = 0.05  # s between looks at a run still being created


@dataclass(frozen=True)
class Piece:
    """A block of a signal as it came: ``values`` (calibrated) at ``time`` (s from the run's
    start), in ``unit``; ``cursor`` resumes after it (``run.follow(name, cursor=...)``)."""

    signal: str
    channel: str
    seq: int
    values: np.ndarray
    time: np.ndarray
    unit: str
    calibration: str | None
    cursor: Cursor

    def to_xarray(self) -> xarray.DataArray:
        attrs = {"units": self.unit, "channel": self.channel, "block": self.seq}
        if self.calibration:
            attrs["calibration"] = self.calibration
        return signal_array(self.values, self.time, self.signal, attrs)


@dataclass(frozen=True)
class LiveSignal:
    """How a signal is made from one stream of a live run, block by block."""

    name: str
    channel: str
    unit: str
    calibration: str | None
    apply: Callable[[np.ndarray], np.ndarray]


def live_signal(
    snapshot: Snapshot,
    run: Run,
    name: str,
    streams: Mapping[str, ChannelSpec],
    calibration: str | None = None,
) -> LiveSignal:
    """Resolve ``name`` for a live run: a stream of it (raw values), or a signal of the
    testbed's description wired to one, under the calibration in force (or ``calibration``)."""
    number = run.number
    try:
        config = resolve(snapshot, number, run.started, run.config_version)
    except NotFound:
        config = None
    if config is None or (name not in config.description.signals and name in streams):
        if name not in streams:
            raise NotFound(
                f"run {number} has no stream {name!r}"
                + ("" if config is None else " and the testbed description no such signal")
                + f"; its streams: {', '.join(streams) or 'none'}"
            )
        if calibration is not None:
            raise InvalidArgument(f"{name} is a stream: it has no calibration to choose")
        return LiveSignal(name, name, "", None, _as_float)
    spec = config.description.signals.get(name)
    if spec is None:
        raise NotFound(
            f"run {number} has no signal or stream {name!r}; signals: "
            f"{', '.join(list(config.description.signals)[:12])}...; streams: "
            f"{', '.join(streams) or 'none'}"
        )
    cal = _calibration(snapshot, run, name, spec.calibration, calibration)
    if cal is not None and (cal.kind == "expression" or cal.params.get("input")):
        raise InvalidArgument(
            f"{name} is computed from other signals ({cal.label}); follow those live, or read "
            f"{name} with run.signal() once the run is saved"
        )
    port = config.wiring.get(name)
    if port is None:
        raise NotFound(f"run {number}: signal {name} is not wired (configuration {config.version})")
    key = config.description.channel(port)
    if key not in streams:
        raise NotFound(
            f"run {number}: signal {name} is wired to {port}, but the run has no stream "
            f"{key!r}; its streams: {', '.join(streams) or 'none'}"
        )
    unit = cal.unit if cal is not None else "V"
    scale = 1.0
    if spec.unit and spec.unit != unit:
        scale = factor(unit, spec.unit)
        unit = spec.unit

    def apply(raw: np.ndarray) -> np.ndarray:
        values = cal.apply(_as_float(raw)) if cal is not None else _as_float(raw)
        return values * scale if scale != 1.0 else values

    return LiveSignal(name, key, unit, cal.label if cal else None, apply)


def _calibration(
    snapshot: Snapshot, run: Run, name: str, default: str | None, label: str | None
) -> Calibration | None:
    if label is not None:
        found = by_label(snapshot, label)
        if found.name != default:
            raise InvalidArgument(
                f"{label} is a version of {found.name}, not of {name}'s calibration "
                f"({default or 'it has none'})"
            )
        return found
    if default is None:
        return None
    current = in_force(snapshot, default, run.number, run.started)
    if current is None:
        raise NotFound(
            f"run {run.number}: signal {name} needs calibration {default}, and none is in force"
        )
    return current


def _as_float(raw: np.ndarray) -> np.ndarray:
    return np.asarray(raw, dtype=np.float64)


class Kept:
    """A live run's blocks as the saver kept them in the store (the ``Saved`` a follower reads
    trimmed blocks from)."""

    def __init__(self, store: Store, prefix: str, specs: Mapping[str, ChannelSpec]) -> None:
        self.store, self.prefix, self.specs = store, prefix, specs

    def blocks(self, run: int, channel: str, start: int, stop: int) -> Iterable[Block]:
        for key in segments.keys(self.store, self.prefix):
            for block in segments.read(self.store, key, self.specs).blocks:
                if block.channel == channel and start <= block.seq < stop:
                    yield block
                if block.channel == channel and block.seq >= stop - 1:
                    return


def follow(
    site: LiveSite,
    store: Store,
    run: Run,
    name: str,
    *,
    snapshot: Snapshot,
    cursor: Cursor | None = None,
    calibration: str | None = None,
    timeout: float = 1.0,
) -> Iterator[Piece]:
    """Each block of signal ``name`` of ``run`` from ``cursor`` (else its first), calibrated,
    until its stream's seal; from Redis while the run is there, else from the store."""
    keys = site.keys(run.number)
    try:
        info = run_info(site.client, keys)
    except NotFound:
        info = None
    if info is None or not _same_run(info, run):
        yield from _from_store(store, run, name, snapshot, cursor, calibration)
        return
    while info.state is State.CREATED:  # its streams are final once prepared
        time.sleep(_WAIT)
        info = run_info(site.client, keys)
    made = live_signal(snapshot, run, name, info.channels, calibration)
    kept = Kept(store, run._row.store_prefix, info.channels)
    if cursor is not None and made.channel not in cursor.positions:
        raise InvalidArgument(
            f"this cursor is not one of {name}: it follows {list(cursor.positions)}"
        )
    follower = Follower(
        site.client,
        run.number,
        channels=[made.channel],
        cursor=cursor,
        prefix=site.prefix,
        saved=kept,
    )
    spec = info.channels[made.channel]
    while follower.status is not Status.ENDED:
        for block in follower.read(timeout=timeout):  # a read returns several blocks: each
            # piece's cursor is the one right after it, not after the read
            yield _piece(made, spec, block, follower.cursor.at(made.channel, block.seq + 1))


def _from_store(
    store: Store,
    run: Run,
    name: str,
    snapshot: Snapshot,
    cursor: Cursor | None,
    calibration: str | None,
) -> Iterator[Piece]:
    """A saved run gone from Redis: its blocks from the segments, as they came."""
    if run._row.state not in ENDED:
        raise NotFound(
            f"run {run.number} is {run._row.state} but not live in Redis: its writer has not "
            "created it there yet, or the saver has not seen it; try again"
        )
    specs = _specs_of(run)
    made = live_signal(snapshot, run, name, specs, calibration)
    start = cursor.positions.get(made.channel, 0) if cursor is not None else 0
    position = Cursor(run.number, {made.channel: start})
    for block in Kept(store, run._row.store_prefix, specs).blocks(
        run.number, made.channel, start, 2**62
    ):
        position = position.at(made.channel, block.seq + 1)
        yield _piece(made, specs[made.channel], block, position)


def _specs_of(run: Run) -> dict[str, ChannelSpec]:
    """A saved live run's streams, from its manifest."""
    source = run.sources[0]
    with source.open() as f:
        declared = json.load(f)["channels"]
    return {c["name"]: ChannelSpec.from_json(json.dumps(c)) for c in declared}


def _piece(made: LiveSignal, spec: ChannelSpec, block: Block, cursor: Cursor) -> Piece:
    at = np.arange(block.first, block.first + block.samples, dtype=np.float64) / spec.rate
    values = made.apply(block.data)
    return Piece(
        made.name, made.channel, block.seq, values, at, made.unit, made.calibration, cursor
    )


def _same_run(info: RunInfo, run: Run) -> bool:
    """Whether Redis's run of that number is this run, not a later one of the same number."""
    return abs((info.reached[State.CREATED] - run._row.created).total_seconds()) < 1e-3
