"""A simulated helicon plasma testbed that writes shots as its LabVIEW DAQ would.

The simulated machine, ISHTAR, is modelled on a mid-sized helicon source: an RF generator
(forward and reflected power), field coils, a gas feed, a swept Langmuir probe, a microwave
interferometer, photodiodes, wall thermocouples. Two 16-bit PXI cards digitise it at 50 kHz:
``PXI M6251`` (ports ai0..ai15) and ``PXI 6133`` (ai0..ai7). Each shot is one TDMS file of raw
ADC counts, with the DAQmx-style linear scaling to volts in the channel properties, waveform
timing, and the settings of the shot in the file properties. The physics behind the counts
(density, electron temperature, powers, field) is written alongside under ``truth.*``.

The campaign has a history, as real ones do (see :mod:`labledger.sim.campaign`): the probe
current moves from ai3 to ai11 at shot 1240; its isolation amplifier's gain is halved at shot
1250 (a recalibration); from shot 1260 the gas is helium and a larger probe tip is fitted.

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
DAQ2 = "PXI 6133"
SAMPLE_RATE = 50_000.0  # Hz
PRE_TRIGGER = 0.1  # s of baseline before the RF pulse
VOLTS_PER_COUNT = 20.0 / 65536  # ±10 V over 16 bits
ELEMENTARY_CHARGE = 1.602176634e-19
ELECTRON_MASS = 9.1093837015e-31
AMU = 1.66053906660e-27
MU_0 = 1.25663706212e-6
ELECTRON_RADIUS = 2.8179403262e-15  # m, classical: the interferometer's phase per density
ION_MASS_AMU = {"Ar": 39.948, "He": 4.0026, "H2": 2.016}
FIRST_SHOT_TIME = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)

# the campaign's history: shot numbers at which something changed
REWIRED_AT = 1240  # Langmuir_I: PXI M6251/ai3 -> PXI M6251/ai11
RECALIBRATED_AT = 1250  # the probe current amplifier's gain halved: -50 -> -100 V/A
HELIUM_FROM = 1260  # gas He, and a 3 mm^2 probe tip in place of the 2 mm^2 one

# field coils: a finite solenoid, field at its centre B = mu0 N I / sqrt(L^2 + 4 R^2)
COIL_TURNS, COIL_LENGTH, COIL_RADIUS = 120, 0.5, 0.15
TESLA_PER_AMPERE = MU_0 * COIL_TURNS / math.sqrt(COIL_LENGTH**2 + 4 * COIL_RADIUS**2)


@dataclass(frozen=True)
class Wiring:
    """Which physical signal is on which port, and the sensor's volts per physical unit."""

    device: str
    port: str
    signal: str
    unit: str
    volts_per_unit: float
    offset_volts: float = 0.0


def wiring(number: int) -> tuple[Wiring, ...]:
    """The DAQ wiring of shot ``number``, as the lab had it that day."""
    probe_port = "ai3" if number < REWIRED_AT else "ai11"
    probe_gain = -50.0 if number < RECALIBRATED_AT else -100.0  # V per A, inverting
    return (
        Wiring(DAQ, "ai0", "RF_Pfwd", "W", 1.0 / 1000.0),  # directional coupler: 1 V per kW
        Wiring(DAQ, "ai1", "RF_Pref", "W", 1.0 / 1000.0),
        Wiring(DAQ, "ai2", "Coil_I", "A", 1.0 / 100.0),  # current transducer: 10 mV/A
        Wiring(DAQ, probe_port, "Langmuir_I", "A", probe_gain),
        Wiring(DAQ, "ai4", "Langmuir_V", "V", 1.0 / 20.0),  # 20:1 divider on the bias
        Wiring(DAQ, "ai5", "Interferometer_phase", "rad", 1.0),
        Wiring(DAQ, "ai6", "Pressure", "Pa", 1.0),  # gauge controller: 1 V per Pa
        Wiring(DAQ, "ai7", "Trigger", "V", 1.0),
        *(Wiring(DAQ2, f"ai{i}", f"Photodiode_{i + 1}", "mW", 2.0) for i in range(4)),
        Wiring(DAQ2, "ai4", "Wall_T1", "K", 0.01, -3.0),  # 10 mV/K, 300 K at 0 V
        Wiring(DAQ2, "ai5", "Wall_T2", "K", 0.01, -3.0),
        Wiring(DAQ2, "ai6", "Gas_flow", "Pa*m^3/s", 50.0),
        Wiring(DAQ2, "ai7", "Coil_V", "V", 1.0 / 10.0),
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
        gas = "Ar" if number < HELIUM_FROM else "He"
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
            probe_area=2.0e-6 if number < HELIUM_FROM else 3.0e-6,
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
        ratio = self.ion_mass / (2 * math.pi * ELECTRON_MASS)
        return -0.5 * self.electron_temperature * math.log(ratio)

    @property
    def line_density(self) -> float:
        """Line-integrated density along the interferometer chord, in m^-2."""
        return self.density * self.path_length

    def settings(self) -> dict[str, float | str]:
        """What the shot was set to, as the DAQ records it with the shot."""
        return {
            "shot": self.number,
            "gas": self.gas,
            "rf_power_setpoint": self.rf_power,
            "coil_current_setpoint": self.coil_current,
            "pressure_setpoint": self.pressure,
        }

    def truth(self) -> dict[str, float | str]:
        return {
            "truth.n_e": self.density,
            "truth.T_e": self.electron_temperature,
            "truth.I_sat": self.ion_saturation_current,
            "truth.V_float": self.floating_potential,
            "truth.nL": self.line_density,
            "truth.P_fwd": self.rf_power,
            "truth.P_ref": 0.06 * self.rf_power,
            "truth.P_inj": 0.94 * self.rf_power,
            "truth.Coil_I": self.coil_current,
            "truth.B_axis": TESLA_PER_AMPERE * self.coil_current,
        }


def physical_signals(shot: Shot, t: np.ndarray) -> dict[str, np.ndarray]:
    """The true physical value of every wired signal at times ``t`` (s from RF on)."""
    on = (t >= 0) & (t < shot.duration)
    ramp = np.clip(t / 0.01, 0, 1) * on  # 10 ms rise of the RF and the plasma
    p_fwd = shot.rf_power * ramp
    bias = -100.0 + 140.0 * np.abs(((t * 1000.0) % 2.0) - 1.0)  # 500 Hz triangle, -100..+40 V
    isat = shot.ion_saturation_current * ramp
    # ion saturation far below V_float, exponential electron current above it, saturating
    electron = np.exp(np.clip((bias - shot.floating_potential) / shot.electron_temperature, -50, 4))
    probe = isat * (electron - 1.0)
    phase = ELECTRON_RADIUS * shot.wavelength * shot.line_density * ramp
    light = 0.4 * (shot.density / 1e17) * ramp  # mW, photodiodes along the column
    coil = np.full_like(t, shot.coil_current)
    return {
        "RF_Pfwd": p_fwd,
        "RF_Pref": 0.06 * p_fwd,
        "Coil_I": coil,
        "Langmuir_I": probe,
        "Langmuir_V": bias,
        "Interferometer_phase": phase,
        "Pressure": np.full_like(t, shot.pressure),
        "Trigger": 5.0 * on,
        **{f"Photodiode_{i + 1}": light * (1.0 - 0.15 * i) for i in range(4)},
        "Wall_T1": 300.0 + 8.0 * np.clip(t, 0, None),
        "Wall_T2": 300.0 + 3.0 * np.clip(t, 0, None),
        "Gas_flow": np.full_like(t, 0.02 * shot.pressure),
        "Coil_V": 0.04 * coil,
    }


def write_shot(folder: str | Path, number: int, *, segments: int = 10) -> Path:
    """Write shot ``number`` as ``<folder>/<number:05d>_Data.tdms`` and return its path.

    >>> import tempfile
    >>> write_shot(tempfile.mkdtemp(), 1234).name
    '01234_Data.tdms'
    """
    shot = Shot.simulate(number)
    start = np.datetime64(shot.started.replace(tzinfo=None), "us")
    root = RootObject(
        {
            "name": f"ISHTAR shot {number}",
            "Author": "labledger.sim",
            **shot.settings(),
            "DateTime": start,
            **shot.truth(),
        }
    )
    groups = {
        DAQ: GroupObject(DAQ, {"model": "NI PXI-6251", "sample_rate": SAMPLE_RATE}),
        DAQ2: GroupObject(DAQ2, {"model": "NI PXI-6133", "sample_rate": SAMPLE_RATE}),
    }
    ports = {port: _digitise(volts) for port, volts in port_volts(number).items()}
    n = len(next(iter(ports.values())))
    path = Path(folder) / f"{number:05d}_Data.tdms"
    per_segment = math.ceil(n / segments)
    order = sorted(ports, key=lambda dp: (dp[0] != DAQ, int(dp[1][2:])))
    with TdmsWriter(path) as writer:
        for i in range(0, n, per_segment):
            channels = [
                ChannelObject(*dp, ports[dp][i : i + per_segment], _props(*dp, start))
                for dp in order
            ]
            writer.write_segment([root, *groups.values(), *channels] if i == 0 else channels)
    return path


def port_volts(number: int) -> dict[tuple[str, str], np.ndarray]:
    """The volts at each (device, port) of shot ``number`` with the sensors' noise, sampled
    at :data:`SAMPLE_RATE` from :data:`PRE_TRIGGER` s before RF on: what the DAQ digitises.

    >>> volts = port_volts(1234)
    >>> pressure = volts[DAQ, "ai6"]                  # the gauge: 1 V per Pa, 2 mV of noise
    >>> pressure.shape, bool(abs(pressure.mean() - Shot.simulate(1234).pressure) < 1e-3)
    ((35000,), True)
    """
    shot = Shot.simulate(number)
    rng = np.random.default_rng(10_000 + number)
    n = round((PRE_TRIGGER + shot.duration + 0.1) * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE - PRE_TRIGGER
    physics = physical_signals(shot, t)
    ports: dict[tuple[str, str], np.ndarray] = {}
    for w in wiring(number):
        volts = physics[w.signal] * w.volts_per_unit + w.offset_volts
        ports[w.device, w.port] = volts + rng.normal(0.0, 0.002, n)
    if number >= REWIRED_AT:  # the old probe port stays in the DAQ task, now unconnected
        ports[DAQ, "ai3"] = rng.normal(0.0, 0.002, n)
    return ports


def _digitise(volts: np.ndarray) -> np.ndarray:
    return np.clip(np.round(volts / VOLTS_PER_COUNT), -32768, 32767).astype(np.int16)


def _props(device: str, port: str, start: np.datetime64) -> dict[str, object]:
    return {
        "NI_ChannelName": f"{device}/{port}",
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
