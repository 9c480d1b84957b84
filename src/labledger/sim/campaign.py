"""The simulated campaign: ISHTAR's configuration history, its calibrations, and an archive of
its shots, recorded in the order a lab would record them.

>>> import tempfile, labledger as ll
>>> la = ll.init(tempfile.mkdtemp() + "/ishtar")
>>> record_history(la, upto=1230)            # what was known before shot 1230
>>> [c.version for c in la.config.log()]
[1]
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labledger.sim.testbed import (
    HELIUM_FROM,
    RECALIBRATED_AT,
    REWIRED_AT,
    TESLA_PER_AMPERE,
    write_shot,
)

if TYPE_CHECKING:
    from labledger.archive import Archive

DESCRIPTION = Path(__file__).with_name("ishtar.yaml")
DESCRIPTION_1260 = Path(__file__).with_name("ishtar-1260.yaml")
STRUCTURE = Path(__file__).with_name("helicon-shot.yaml")  # what a shot is: la.structures.add
SHOTS = range(1221, 1271)

# the calibrations of the sensors, from volts at the port to physical units
CALIBRATIONS: dict[str, dict[str, Any]] = {
    "rf_pfwd": {"gain": 1000.0, "unit": "W"},
    "rf_pref": {"gain": 1000.0, "unit": "W"},
    "coil_i": {"gain": 100.0, "unit": "A"},
    "coil_v": {"gain": 10.0, "unit": "V"},
    "langmuir_i": {"gain": -0.02, "unit": "A"},
    "langmuir_v": {"gain": 20.0, "unit": "V"},
    "interferometer_phase": {"gain": 1.0, "unit": "rad"},
    "pressure": {"gain": 1.0, "unit": "Pa"},
    "photodiode": {"gain": 0.5, "unit": "mW"},
    "thermocouple": {"gain": 100.0, "offset": 300.0, "unit": "K"},
    "gas_flow": {"gain": 0.02, "unit": "Pa*m^3/s"},
    "p_inj": {"kind": "expression", "expression": "RF_Pfwd - RF_Pref", "unit": "W"},
    "probe_p": {"kind": "expression", "expression": "Langmuir_I * Langmuir_V", "unit": "W"},
    "plasma_light": {
        "kind": "expression",
        "expression": "(Photodiode_1 + Photodiode_2 + Photodiode_3 + Photodiode_4) / 4",
        "unit": "mW",
    },
    "coil_b": {  # the field map, measured with a Hall probe at three currents
        "kind": "table",
        "input": "Coil_I",
        "x": [0.0, 300.0, 600.0],
        "y": [0.0, 300.0 * TESLA_PER_AMPERE, 600.0 * TESLA_PER_AMPERE],
        "unit": "T",
    },
}

# (the shot before which it was recorded, what was recorded)
HISTORY: list[tuple[int, Callable[[Archive], Any]]] = [
    (
        0,
        lambda la: la.config.load(DESCRIPTION, reason="ISHTAR as commissioned"),
    ),
    (
        0,
        lambda la: [
            la.calibrations.add(name, reason="bench calibration of the sensors", **dict(spec))
            for name, spec in CALIBRATIONS.items()
        ],
    ),
    (
        REWIRED_AT,
        lambda la: la.config.wire(
            {"Langmuir_I": "PXI M6251/ai11"},
            from_run=REWIRED_AT,
            reason="ai3 input stage noisy: probe current moved to ai11",
        ),
    ),
    (
        RECALIBRATED_AT,
        lambda la: la.calibrations.add(
            "langmuir_i",
            gain=-0.01,
            unit="A",
            from_run=RECALIBRATED_AT,
            reason="isolation amplifier gain halved to avoid clipping the electron branch",
        ),
    ),
    (
        HELIUM_FROM,
        lambda la: la.config.load(
            DESCRIPTION_1260,
            from_run=HELIUM_FROM,
            reason="helium campaign; 3 mm^2 probe tip fitted",
        ),
    ),
]


def record_history(la: Archive, upto: int | None = None, since: int = 0) -> None:
    """Record the campaign's history entries due before shot ``upto`` (all of them if None),
    skipping those due before ``since`` (already recorded)."""
    for due, record in HISTORY:
        if since <= due and (upto is None or due <= upto):
            record(la)


def build(
    la: Archive,
    daq: str | Path,
    shots: Iterable[int] = SHOTS,
    progress: Callable[[int, int], None] | None = None,
) -> list[Any]:
    """Run the campaign into ``la``: for each shot, record what changed before it, write its
    TDMS file into ``daq`` and ingest it. Returns the ingest results."""
    Path(daq).mkdir(parents=True, exist_ok=True)
    results: list[Any] = []
    recorded = 0
    for number in shots:
        record_history(la, upto=number, since=recorded)
        recorded = number + 1
        results += la.ingest([write_shot(daq, number)], progress=progress)
    return results
