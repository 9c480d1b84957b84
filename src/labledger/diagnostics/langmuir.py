"""A swept single Langmuir probe: electron temperature, floating potential, ion saturation
current and density from its current-voltage characteristic.

The bias is swept (ISHTAR: a triangle from -100 to +40 V at a few hundred Hz, sampled at
50 kHz), so one sweep holds a few dozen noisy points. The characteristic is therefore the
current averaged by bias over many sweeps (conditional averaging), and the physics is fitted
to that curve, the classical way:

- the floating potential is where the current crosses zero;
- the ion branch, well below it, is fitted with a line; extrapolated to the floating
  potential it gives the ion saturation current;
- the electron current (the current less the ion line) grows as ``exp(V / T_e)`` between the
  floating potential and the knee, so the slope of its logarithm is ``1 / T_e``;
- the density follows from the Bohm flux, ``I_sat = 0.61 n e A sqrt(e T_e / m_i)``.

Current is taken positive when electrons are collected, so the ion branch is negative. The
results are pint quantities (eV, m^-3, V, A) or xarray data with ``attrs["units"]``; the fits
themselves work on plain floats in SI (and eV), converted once on the way in and out.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from labledger.diagnostics.constants import AMU, ELEMENTARY_CHARGE, GAS_NAMES, ION_MASS_AMU
from labledger.diagnostics.flattop import flattop, in_units, on_flattop
from labledger.errors import InvalidArgument, LabledgerError, NotFound
from labledger.machine.model import Diagnostic
from labledger.machine.units import magnitude_in, with_unit

if TYPE_CHECKING:
    import pint
    import xarray

TimeWindow = tuple[float, float]
BiasWindow = tuple[float, float]

BOHM = 0.61  # the ion flux at the sheath edge, n c_s exp(-1/2), for cold ions
ION_FIT_BELOW = 4.0  # T_e below V_float: the electron current is < 2 % of I_sat there
KNEE_FRACTION = 0.5  # the transition fit stops where the electron current reaches half its
# saturation value: the exponential holds well below the knee, and bends over near it
SIGNIFICANT = 20.0  # a characteristic spans this many standard errors, or it is only noise
MIN_SAMPLES = 3  # a bias bin with fewer samples than this is noise, not an average
# the unit of each result of the analysis (the fits compute in these)
UNITS: dict[str, str] = {"V_float": "V", "I_sat": "A", "T_e": "eV", "n_e": "m^-3", "V_knee": "V"}


class FitError(LabledgerError, ValueError):
    """A characteristic the analysis cannot make sense of: no zero crossing, too few points."""


def ion_mass(gas: str) -> pint.Quantity:
    """The mass (kg) of the singly charged ion of ``gas`` (a symbol, as ``Ar``, or a name).

    >>> ion_mass("Ar").units, round(ion_mass("Ar").magnitude / 1.66053906660e-27, 3)
    (<Unit('kilogram')>, 39.948)
    """
    key = str(gas).strip()
    found = next((k for k in ION_MASS_AMU if k.lower() == key.lower()), None)
    found = found or GAS_NAMES.get(key.lower())
    if found is None:
        raise InvalidArgument(
            f"unknown gas {gas!r}: the Langmuir model knows the ion masses of "
            f"{', '.join(ION_MASS_AMU)}; add it to labledger.diagnostics.constants.ION_MASS_AMU"
        )
    return with_unit(ION_MASS_AMU[found] * AMU, "kg")


class LangmuirProbe(Diagnostic):
    """A swept single Langmuir probe (model ``langmuir``): signals ``current`` (A, positive for
    electron collection) and ``voltage`` (the bias, V); property ``area`` (the collecting
    area, as ``2.0 mm^2``). The ion mass comes from the fill gas: the run's ``gas`` metadata,
    else a component's ``gas`` property in the description.

    Each method takes ``time=(t0, t1)`` in s (default: the flat-top, where the probe current
    is on, less 10 % at each end) and the fits take ``window=(v0, v1)``, the bias range in V
    they use (default: the whole sweep). Results are pint quantities: ``.to("cm^-3")``,
    ``.m_as("eV")`` give them in another unit, or as a float in the unit named.

    >>> probe = run.machine.langmuir_probe
    >>> probe.temperature(), probe.density()
    (<Quantity(5.20..., 'electron_volt')>, <Quantity(3.15...e+17, '1 / meter ** 3')>)
    >>> probe.density().to("cm^-3")
    <Quantity(3.15...e+11, '1 / centimeter ** 3')>
    >>> probe.analyse(time=(0.1, 0.2), window=(-80.0, 10.0))["T_e"]
    <Quantity(5.20..., 'electron_volt')>
    """

    roles: ClassVar[tuple[str, ...]] = ("current", "voltage")

    @property
    def gas(self) -> str:
        """The fill gas: the run's own record of it first, then the testbed description."""
        gas = self.run.metadata.get("gas")
        if gas:
            return str(gas)
        for _, spec in self.config.description.walk():
            if spec.properties.get("gas"):
                return str(spec.properties["gas"])
        raise NotFound(
            f"run {self.run.number}: no gas to take the ion mass from: neither the run's "
            "metadata nor a component of the testbed description has a 'gas'"
        )

    @property
    def ion_mass(self) -> pint.Quantity:
        """The ion mass (kg), from :attr:`gas`."""
        gas = self.gas
        try:
            return ion_mass(gas)
        except InvalidArgument as exc:
            source = "its metadata" if self.run.metadata.get("gas") else "the description"
            raise InvalidArgument(f"run {self.run.number} ({source}): {exc}") from None

    def characteristic(self, time: TimeWindow | None = None, bins: int = 200) -> xarray.DataArray:
        """The current-voltage characteristic over ``time``: the current averaged in ``bins``
        equal bins of bias, over "bias" (the mean bias of each bin, V), with the number of
        samples (``count``) and the standard error of each mean (``error``, A). Bins with
        fewer than three samples are left out."""
        self.require(*self.roles)
        bias, current = self._samples(time)
        return self._curve(bias, current, bins)

    def analyse(
        self, time: TimeWindow | None = None, window: BiasWindow | None = None
    ) -> dict[str, pint.Quantity]:
        """The fitted characteristic, as quantities: ``V_float`` (V), ``I_sat`` (A,
        positive), ``T_e`` (eV), ``n_e`` (m^-3) and ``V_knee`` (V, where the electron current
        saturates: close to the plasma potential). Raises :class:`FitError` for a curve that
        cannot be fitted."""
        self.require(*self.roles)
        found = self._analysed(self.characteristic(time), window)
        return {name: with_unit(value, UNITS[name]) for name, value in found.items()}

    def temperature(
        self, time: TimeWindow | None = None, window: BiasWindow | None = None
    ) -> pint.Quantity:
        """The electron temperature (eV)."""
        self.require(*self.roles)
        return self.analyse(time, window)["T_e"]

    def floating_potential(
        self, time: TimeWindow | None = None, window: BiasWindow | None = None
    ) -> pint.Quantity:
        """The floating potential (V): the bias at which the probe draws no net current."""
        self.require(*self.roles)
        return self.analyse(time, window)["V_float"]

    def ion_saturation_current(
        self, time: TimeWindow | None = None, window: BiasWindow | None = None
    ) -> pint.Quantity:
        """The ion saturation current at the floating potential (A, a positive number)."""
        self.require(*self.roles)
        return self.analyse(time, window)["I_sat"]

    def density(
        self, time: TimeWindow | None = None, window: BiasWindow | None = None
    ) -> pint.Quantity:
        """The electron density (m^-3), from the ion saturation current and T_e."""
        self.require(*self.roles)
        return self.analyse(time, window)["n_e"]

    def density_trace(
        self,
        resolution: float = 0.05,
        time: TimeWindow | None = None,
        window: BiasWindow | None = None,
    ) -> xarray.DataArray:
        """The density over time, each ``resolution`` s analysed on its own, over ``time``
        (default: while the probe current is on, edges included); NaN where a bin's
        characteristic cannot be fitted (the plasma off, or too few sweeps in the bin)."""
        import xarray

        self.require(*self.roles)
        if resolution <= 0:
            raise InvalidArgument(f"resolution {resolution!r}: a duration in s, above zero")
        current = self.signal("current", time=time)
        if time is None:
            t0, t1 = flattop(current, trim=0.0)
            current = current.sel(time=slice(t0, t1))
        else:
            t0, t1 = time
        bias = self._bias(current)
        t = current["time"].values
        amps = in_units(current, "A")
        edges = np.arange(t0, t1 + resolution / 2, resolution)
        centres, values = [], []
        for lo, hi in itertools.pairwise(edges):
            rows = (t >= lo) & (t < hi)
            centres.append((lo + hi) / 2)
            try:
                curve = self._curve(bias[rows], amps[rows], 200)
                values.append(self._analysed(curve, window)["n_e"])
            except FitError:
                values.append(np.nan)
        return xarray.DataArray(
            np.asarray(values, dtype=np.float64),
            dims=("time",),
            coords={"time": xarray.Variable("time", np.asarray(centres), {"units": "s"})},
            name="n_e",
            attrs={
                "units": "m^-3",
                "long_name": f"electron density from {self.name}",
                "resolution": resolution,
                "run": self.run.number,
            },
        )

    # -- the workings ----------------------------------------------------------------------

    def _samples(self, time: TimeWindow | None) -> tuple[np.ndarray, np.ndarray]:
        """Bias (V) and current (A) sample by sample over ``time``, or over the flat-top of
        the probe current: it is on only while there is plasma."""
        current = on_flattop(self, "current", time)
        return self._bias(current), in_units(current, "A")

    def _bias(self, current: xarray.DataArray) -> np.ndarray:
        """The bias (V) at the times of ``current``."""
        t = current["time"].values
        bias = self.signal("voltage", time=(float(t[0]), float(t[-1])) if len(t) else None)
        volts = in_units(bias, "V")
        tb = bias["time"].values
        if len(tb) != len(t) or not np.array_equal(tb, t):
            # channels of two cards, or of different rates: the bias where the current is
            volts = np.interp(t, tb, volts, left=np.nan, right=np.nan)
        return volts

    def _curve(self, bias: np.ndarray, current: np.ndarray, bins: int) -> xarray.DataArray:
        import xarray

        good = np.isfinite(bias) & np.isfinite(current)
        bias, current = bias[good], current[good]
        if bias.size < MIN_SAMPLES or np.ptp(bias) == 0:
            raise FitError(
                f"run {self.run.number}: {self.name} has too few samples, or no sweep of its "
                "bias, in this time window"
            )
        edges = np.linspace(bias.min(), bias.max(), int(bins) + 1)
        which = np.clip(np.searchsorted(edges, bias, side="right") - 1, 0, bins - 1)
        count = np.bincount(which, minlength=bins).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean_v = np.bincount(which, bias, bins) / count
            mean_i = np.bincount(which, current, bins) / count
            square = np.bincount(which, current**2, bins) / count
            spread = np.sqrt(np.clip(square - mean_i**2, 0, None) * count / (count - 1))
            error = spread / np.sqrt(count)
        keep = count >= MIN_SAMPLES
        return xarray.DataArray(
            mean_i[keep],
            dims=("bias",),
            coords={
                "bias": xarray.Variable("bias", mean_v[keep], {"units": "V"}),
                "count": ("bias", count[keep].astype(np.int64)),
                "error": xarray.Variable("bias", error[keep], {"units": "A"}),
            },
            name="current",
            attrs={
                "units": "A",
                "long_name": f"I-V characteristic of {self.name}",
                "run": self.run.number,
            },
        )

    def _analysed(self, curve: xarray.DataArray, window: BiasWindow | None) -> dict[str, float]:
        """The fit's results as floats in :data:`UNITS`."""
        if window is not None:
            curve = curve.where(
                (curve["bias"] >= window[0]) & (curve["bias"] <= window[1]), drop=True
            )
        try:
            fit = fit_characteristic(curve["bias"].values, curve.values, curve["error"].values)
        except FitError as exc:
            raise FitError(f"run {self.run.number}: {self.name}: {exc}") from None
        area = self.property("area", "m^2")
        mass = magnitude_in(self.ion_mass, "kg")
        sound_speed = np.sqrt(ELEMENTARY_CHARGE * fit["T_e"] / mass)
        density = fit["I_sat"] / (BOHM * ELEMENTARY_CHARGE * area * sound_speed)
        return {
            "V_float": fit["V_float"],
            "I_sat": fit["I_sat"],
            "T_e": fit["T_e"],
            "n_e": float(density),
            "V_knee": fit["V_knee"],
        }


def fit_characteristic(
    bias: np.ndarray, current: np.ndarray, error: np.ndarray | None = None
) -> dict[str, float]:
    """Fit an averaged I-V curve: ``V_float``, ``I_sat``, ``T_e`` and ``V_knee``.

    ``error`` is the standard error of each point (A); it weights the fits. The ion line and
    the electron temperature depend on each other (the ion branch must lie a few T_e below
    V_float), so they are fitted in turn until T_e settles.
    """
    order = np.argsort(bias)
    v = np.asarray(bias, dtype=np.float64)[order]
    i = np.asarray(current, dtype=np.float64)[order]
    err = np.ones_like(v) if error is None else np.asarray(error, dtype=np.float64)[order]
    good = np.isfinite(v) & np.isfinite(i) & np.isfinite(err)
    v, i, err = v[good], i[good], err[good]
    if v.size < 8:
        raise FitError(f"{v.size} points of characteristic: too few to fit")
    # a bin of identical samples has no spread; give it the typical error, not infinite weight
    positive = err[err > 0]
    err = np.maximum(err, 0.1 * np.median(positive)) if positive.size else np.ones_like(v)

    if error is not None and np.ptp(i) < SIGNIFICANT * np.median(err):
        raise FitError(
            "the current is no more than noise over the sweep: is the plasma on in this time "
            "window?"
        )
    v_float = _zero_crossing(v, i)
    temperature = level = np.nan
    for _ in range(30):
        # the ion branch: well below V_float, so that it holds no electron current
        if np.isfinite(temperature):
            ion = v <= v_float - ION_FIT_BELOW * temperature
        else:  # first pass: the lower half of the bias below V_float
            ion = v <= v_float - 0.5 * (v_float - v[0])
        if np.count_nonzero(ion) < 3:
            ion = v <= v_float - 0.5 * (v_float - v[0])
        if np.count_nonzero(ion) < 3:
            raise FitError(f"fewer than 3 points of the ion branch below V_float={v_float:.1f} V")
        # less the tail of the electron current fitted last time round: a straight line
        # through it would tilt, and understate I_sat at V_float by a percent or two
        tail = np.exp(level + v[ion] / temperature) if np.isfinite(temperature) else 0.0
        slope, offset = np.polyfit(v[ion], i[ion] - tail, 1, w=1 / err[ion])
        electron = i - (offset + slope * v)
        saturation = np.max(electron)
        knee_index = int(np.argmax(electron))
        # the transition region: from V_float up to half the electron saturation current
        region = (
            (v >= v_float)
            & (electron > 0)
            & (electron <= KNEE_FRACTION * saturation)
            & (np.arange(v.size) < knee_index)
        )
        if np.count_nonzero(region) < 3 and np.isfinite(temperature):
            region |= (v >= v_float - temperature) & (electron > 0) & (v < v[knee_index])
            region &= electron <= KNEE_FRACTION * saturation
        if np.count_nonzero(region) < 3:
            raise FitError(
                f"fewer than 3 points between V_float={v_float:.1f} V and the knee: the sweep "
                "is too coarse, or the bias window leaves out the transition"
            )
        # ln of the electron current, weighted by its relative precision
        rate, level = np.polyfit(
            v[region], np.log(electron[region]), 1, w=electron[region] / err[region]
        )
        if rate <= 0:
            raise FitError("the electron current does not grow with the bias")
        new = 1.0 / rate
        v_float = _model_zero(offset, slope, level, new, v_float)
        if np.isfinite(temperature) and abs(new - temperature) < 1e-4 * new:
            temperature = new
            break
        temperature = new
    saturation_current = -(offset + slope * v_float)
    if saturation_current <= 0:
        raise FitError("the ion branch is not negative at V_float: no ion saturation current")
    return {
        "V_float": float(v_float),
        "I_sat": float(saturation_current),
        "T_e": float(temperature),
        "V_knee": float((np.log(saturation) - level) * temperature),
    }


def _zero_crossing(v: np.ndarray, i: np.ndarray) -> float:
    """The bias where the current last goes from negative to positive, interpolated."""
    up = np.flatnonzero((i[:-1] < 0) & (i[1:] >= 0))
    if up.size == 0:
        raise FitError(
            "the current does not cross zero: no floating potential in the bias range (is the "
            "plasma on in this time window?)"
        )
    k = int(up[-1])
    return float(v[k] - i[k] * (v[k + 1] - v[k]) / (i[k + 1] - i[k]))


def _model_zero(offset: float, slope: float, level: float, temperature: float, v0: float) -> float:
    """Where the fitted curve, ion line plus exponential, crosses zero: nearer the truth than
    a straight line between two points of an exponential."""
    v = v0
    for _ in range(50):
        ions = -(offset + slope * v)
        if ions <= 0:
            return v0
        step = temperature * (np.log(ions) - level) - v
        v += step
        if abs(step) < 1e-9:
            break
    return float(v) if np.isfinite(v) else v0
