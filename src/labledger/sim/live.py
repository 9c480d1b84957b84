"""The simulated testbed shooting live: each shot's volts written through ``la.acquisition``
block by block as the DAQ would read them, in real time, for ``labledger demo --live``.

A live shot is the shot the TDMS demo writes (:func:`labledger.sim.testbed.port_volts`: the
same physics, wiring and noise, deterministic in the shot number), sent as float32 volts at the
ports the testbed's wiring names ("PXI M6251/ai11" for Langmuir_I from shot 1240), which is what
the archive's calibrations turn into physical units. Its time axis starts when the acquisition
starts (the TDMS file's starts 0.1 s before RF on).

>>> shot = live_shot(1271)
>>> shot.metadata["gas"], len(shot.ports), shot.samples, shot.rate
('He', 17, 35000, 50000.0)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from labledger.errors import Conflict
from labledger.live import Acquisition
from labledger.sim.testbed import SAMPLE_RATE, Shot, port_volts

if TYPE_CHECKING:
    from labledger.archive import Archive

STRUCTURE = "helicon-shot"
BLOCK_SECONDS = 0.02  # what the DAQ reads at once: 1,000 samples a port at 50 kHz
_TRIES = 100


@dataclass(frozen=True)
class LiveShot:
    """A shot as the DAQ sends it: ``ports`` (stream name -> float32 volts), ``metadata``."""

    number: int
    ports: dict[str, np.ndarray]
    metadata: dict[str, Any]
    rate: float = SAMPLE_RATE

    @property
    def samples(self) -> int:
        return len(next(iter(self.ports.values())))


def live_shot(number: int) -> LiveShot:
    """Shot ``number`` of the simulated testbed, as float32 volts at its DAQ ports."""
    shot = Shot.simulate(number)
    ports = {
        f"{device}/{port}": volts.astype(np.float32)
        for (device, port), volts in port_volts(number).items()
    }
    return LiveShot(number, ports, {**shot.settings(), **shot.truth()})


def fire(
    la: Archive,
    number: int,
    *,
    realtime: bool = True,
    block_seconds: float = BLOCK_SECONDS,
    written: Callable[[int], None] | None = None,
) -> LiveShot:
    """Acquire shot ``number`` live into ``la``: declare a stream a port, start, write the
    blocks (paced to real time unless ``realtime`` is False), close. An exception (Ctrl-C)
    aborts the run. ``written(seq)`` is told after each block of all ports."""
    made = live_shot(number)
    acq = la.acquisition(run=number, structure=STRUCTURE, metadata=made.metadata)
    _acquire(acq, made, realtime, block_seconds, written)
    return made


def fire_next(
    la: Archive,
    first: int,
    *,
    realtime: bool = True,
    block_seconds: float = BLOCK_SECONDS,
    written: Callable[[int], None] | None = None,
) -> LiveShot:
    """:func:`fire` under the next free number from ``first`` on: after every run of the
    archive, skipping one an interrupted demo left in Redis."""
    held = [r.number for r in la.catalog.last(1)] + [r.number for r in la.catalog.open_runs()]
    number = max([first - 1, *held]) + 1
    for _ in range(_TRIES):
        made = live_shot(number)
        try:
            acq = la.acquisition(run=number, structure=STRUCTURE, metadata=made.metadata)
        except Conflict:  # the catalog or Redis has that number
            number += 1
            continue
        _acquire(acq, made, realtime, block_seconds, written)
        return made
    raise Conflict(f"runs {number - _TRIES + 1} to {number} are all taken: give another --first")


def _acquire(
    acq: Acquisition,
    made: LiveShot,
    realtime: bool,
    block_seconds: float,
    written: Callable[[int], None] | None,
) -> None:
    step = max(1, round(block_seconds * made.rate))
    with acq:
        streams = {name: acq.stream(name, dtype="float32", rate=made.rate) for name in made.ports}
        acq.start()
        began = time.monotonic()
        for seq, start in enumerate(range(0, made.samples, step)):
            acq.write({streams[name]: v[start : start + step] for name, v in made.ports.items()})
            if written is not None:
                written(seq)
            if realtime:
                time.sleep(max(0.0, began + (start + step) / made.rate - time.monotonic()))
