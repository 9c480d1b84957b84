"""A simulated helicon plasma testbed that writes shots as its LabVIEW DAQ would.

The simulated machine is modelled on a mid-sized helicon source: an RF generator (forward and
reflected power), field coils, a gas feed, a swept Langmuir probe and a microwave
interferometer, all digitised by a 16-bit PXI card (``PXI M6251``, channels ``ai0``..``ai7``)
at 50 kHz. Each shot is one TDMS file of raw ADC counts, with the DAQmx-style linear scaling to
volts in the channel properties, waveform timing, and the settings of the shot in the file
properties. The physics behind the counts (density, electron temperature, powers, field) is
written alongside under ``truth.*`` so tests can check what analysis recovers.

Everything is deterministic in the shot number: the same shot is the same bytes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from nptdms import ChannelObject, GroupObject, RootObject, TdmsWriter

DAQ = "PXI M6251"
SAMPLE_RATE = 50_000.0  # Hz
PRE_TRIGGER = 0.1  # s of baseline before the RF pulse
VOLTS_PER_COUNT = 20.0 / 65536  # ±10 V over 16 bits
ELEMENTARY_CHARGE = 1.602176634e-19
AMU = 1.66053906660e-27
ION_MASS_AMU = {"Ar": 39.948, "He": 4.0026, "H2": 2.016}
FIRST_SHOT_TIME = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Wiring:
    """Which physical signal is on which port, and the sensor's volts per physical unit."""

    port: str
    signal: str
    unit: str
    volts_per_unit: float


WIRING = (
    Wiring("ai0", "RF_Pfwd", "W", 1.0 / 1000.0),  # directional coupler: 1 V per kW
    Wiring("ai1", "RF_Pref", "W", 1.0 / 1000.0),
    Wiring("ai2", "Coil_I", "A", 1.0 / 100.0),  # current transducer: 10 mV/A
    Wiring("ai3", "Langmuir_I", "A", -50.0),  # shunt and isolation amplifier, inverting
    Wiring("ai4", "Langmuir_V", "V", 1.0 / 20.0),  # 20:1 divider on the bias
    Wiring("ai5", "Interferometer_phase", "rad", 1.0),
    Wiring("ai6", "Pressure", "Pa", 1.0),  # gauge controller: 1 V per Pa
    Wiring("ai7", "Trigger", "V", 1.0),
)


@dataclass(frozen=True)
class Shot:
    """The settings and the physics of one shot."""

    number: int
    gas: str
    rf_power: float  # W forward, set-point
    coil_current: float  # A
    pressure: float  # Pa
    duration: float  # s of RF
    density: float  # m^-3 at the probe
    electron_temperature: float  # eV
    probe_area: float = 2.0e-6  # m^2
    path_length: float = 0.15  # m, interferometer chord through the plasma
    wavelength: float = 2.0e-3  # m, interferometer
    started: datetime = FIRST_SHOT_TIME

    @classmethod
    def simulate(cls, number: int) -> Shot:
        """The shot ``number`` of the simulated campaign: settings vary from shot to shot and
        the plasma follows them (density with power and field, temperature with pressure)."""
        rng = np.random.default_rng(number)
        gas = "Ar" if number % 10 < 7 else "He"
        rf_power = float(rng.choice([1000.0, 1500.0, 2000.0, 3000.0]))
        coil_current = float(rng.choice([300.0, 400.0, 500.0]))
        pressure = float(rng.uniform(0.2, 1.0))
        density = 2.0e17 * (rf_power / 1000.0) * (coil_current / 400.0) ** 0.5
        density *= 1.0 if gas == "Ar" else 0.4
        te = float(3.0 + 2.0 / (pressure + 0.3) + rng.normal(0.0, 0.2))
        return cls(
            number=number,
            gas=gas,
            rf_power=rf_power,
            coil_current=coil_current,
            pressure=round(pressure, 3),
            duration=0.5,
            density=float(density * rng.uniform(0.9, 1.1)),
            electron_temperature=round(te, 3),
            started=FIRST_SHOT_TIME + timedelta(minutes=6 * number),
        )

    @property
    def ion_mass(self) -> float:
        return ION_MASS_AMU[self.gas] * AMU

    @property
    def ion_saturation_current(self) -> float:
        """Bohm flux to the probe: 0.61 n e A sqrt(k Te / m_i), in A."""
        cs = math.sqrt(self.electron_temperature * ELEMENTARY_CHARGE / self.ion_mass)
        return 0.61 * self.density * ELEMENTARY_CHARGE * self.probe_area * cs

    @property
    def floating_potential(self) -> float:
        """The bias at which the probe draws no net current, in V."""
        ratio = self.ion_mass / (2 * math.pi * 9.1093837015e-31)
        return -0.5 * self.electron_temperature * math.log(ratio)

    def truth(self) -> dict[str, float | str]:
        return {
            "truth.n_e": self.density,
            "truth.T_e": self.electron_temperature,
            "truth.I_sat": self.ion_saturation_current,
            "truth.V_float": self.floating_potential,
            "truth.P_fwd": self.rf_power,
            "truth.P_ref": 0.06 * self.rf_power,
            "truth.Coil_I": self.coil_current,
        }


def physical_signals(shot: Shot, t: np.ndarray) -> dict[str, np.ndarray]:
    """The true physical value of every wired signal at times ``t`` (s from RF on)."""
    on = (t >= 0) & (t < shot.duration)
    ramp = np.clip(t / 0.01, 0, 1) * on  # 10 ms rise of the RF and the plasma
    p_fwd = shot.rf_power * ramp
    bias = -100.0 + 140.0 * np.abs(((t * 1000.0) % 2.0) - 1.0)  # 1 kHz triangle, -100..+40 V
    isat = shot.ion_saturation_current * ramp
    # ion saturation far below V_float, exponential electron current above it, saturating
    electron = np.exp(np.clip((bias - shot.floating_potential) / shot.electron_temperature, -50, 4))
    probe = isat * (electron - 1.0)
    phase = 2.82e-15 * shot.wavelength * shot.density * shot.path_length * ramp
    return {
        "RF_Pfwd": p_fwd,
        "RF_Pref": 0.06 * p_fwd,
        "Coil_I": np.full_like(t, shot.coil_current),
        "Langmuir_I": probe,
        "Langmuir_V": bias,
        "Interferometer_phase": phase,
        "Pressure": np.full_like(t, shot.pressure),
        "Trigger": 5.0 * on,
    }


def write_shot(folder: str | Path, number: int, *, segments: int = 10) -> Path:
    """Write shot ``number`` as ``<folder>/<number:05d>_Data.tdms`` and return its path.

    >>> import tempfile
    >>> write_shot(tempfile.mkdtemp(), 1234).name
    '01234_Data.tdms'
    """
    shot = Shot.simulate(number)
    rng = np.random.default_rng(10_000 + number)
    n = round((PRE_TRIGGER + shot.duration + 0.1) * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE - PRE_TRIGGER
    physics = physical_signals(shot, t)
    start = np.datetime64(shot.started.replace(tzinfo=None), "us")
    root = RootObject(
        {
            "name": f"ISHTAR shot {number}",
            "Author": "labledger.sim",
            "shot": number,
            "gas": shot.gas,
            "rf_power_setpoint": shot.rf_power,
            "coil_current_setpoint": shot.coil_current,
            "pressure_setpoint": shot.pressure,
            "DateTime": start,
            **shot.truth(),
        }
    )
    group = GroupObject(DAQ, {"model": "NI PXI-6251", "sample_rate": SAMPLE_RATE})
    counts = {}
    for w in WIRING:
        volts = physics[w.signal] * w.volts_per_unit + rng.normal(0.0, 0.002, n)
        counts[w.port] = np.clip(np.round(volts / VOLTS_PER_COUNT), -32768, 32767).astype(np.int16)
    path = Path(folder) / f"{number:05d}_Data.tdms"
    per_segment = math.ceil(n / segments)
    with TdmsWriter(path) as writer:
        for i in range(0, n, per_segment):
            channels = [
                ChannelObject(
                    DAQ, w.port, counts[w.port][i : i + per_segment], _port_props(w, start)
                )
                for w in WIRING
            ]
            writer.write_segment([root, group, *channels] if i == 0 else channels)
    return path


def _port_props(wiring: Wiring, start: np.datetime64) -> dict[str, object]:
    return {
        "NI_ChannelName": f"{DAQ}/{wiring.port}",
        "unit_string": "V",
        "NI_Scaling_Status": "unscaled",
        "NI_Number_Of_Scales": 1,
        "NI_Scale[0]_Scale_Type": "Linear",
        "NI_Scale[0]_Linear_Slope": VOLTS_PER_COUNT,
        "NI_Scale[0]_Linear_Y_Intercept": 0.0,
        "wf_start_time": start,
        "wf_start_offset": -PRE_TRIGGER,
        "wf_increment": 1.0 / SAMPLE_RATE,
        "wf_xname": "Time",
        "wf_xunit_string": "s",
    }


def write_shots(folder: str | Path, numbers: range | list[int]) -> list[Path]:
    """Write several shots into ``folder`` (created if needed)."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    return [write_shot(folder, n) for n in numbers]
