"""An RF generator's directional coupler: the power injected into the plasma, and how much of
the forward power the load sends back."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import numpy as np

from labledger.diagnostics.flattop import in_units, on_flattop
from labledger.machine.model import Diagnostic
from labledger.machine.units import with_unit

if TYPE_CHECKING:
    import pint
    import xarray

TimeWindow = tuple[float, float]


class RfGenerator(Diagnostic):
    """An RF generator (model ``rf``): signals ``forward`` and ``reflected`` power (W) at the
    coupler.

    >>> rf = run.machine.rf_generator
    >>> rf.mean_injected_power()
    <Quantity(1879.9..., 'watt')>
    >>> float(rf.reflection().sel(time=slice(0.1, 0.4)).mean())
    0.0600...
    """

    roles: ClassVar[tuple[str, ...]] = ("forward", "reflected")

    def injected_power(self, time: TimeWindow | None = None) -> xarray.DataArray:
        """Forward less reflected power, in W, over ``time`` (default: the whole record)."""
        self.require(*self.roles)
        forward, reflected = self._powers(time)
        injected = in_units(forward, "W") - in_units(reflected, "W")
        return (
            forward.copy(data=injected)
            .assign_attrs(units="W", long_name=f"RF power injected by {self.name}")
            .rename("P_inj")
        )

    def mean_injected_power(self, time: TimeWindow | None = None) -> pint.Quantity:
        """The mean injected power (W) over ``time`` (default: the flat-top of the forward
        power)."""
        self.require(*self.roles)
        if time is None:
            forward = on_flattop(self, "forward", None)
            time = (float(forward["time"][0]), float(forward["time"][-1]))
        return with_unit(np.nanmean(self.injected_power(time).values), "W")

    def reflection(
        self, time: TimeWindow | None = None, threshold: float = 0.05
    ) -> xarray.DataArray:
        """The power reflection coefficient |Γ|² = P_ref / P_fwd over ``time`` (default: the
        whole record). It is NaN wherever the forward power is below ``threshold`` times its
        peak: with the generator off the ratio is noise over noise."""
        self.require(*self.roles)
        forward, reflected = self._powers(time)
        p_fwd, p_ref = in_units(forward, "W"), in_units(reflected, "W")
        peak = np.nanpercentile(p_fwd, 99) if np.isfinite(p_fwd).any() else np.nan
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.where(p_fwd > threshold * peak, p_ref / p_fwd, np.nan)
        return (
            forward.copy(data=ratio)
            .assign_attrs(units="1", long_name=f"power reflection coefficient of {self.name}")
            .rename("reflection")
        )

    def _powers(self, time: TimeWindow | None) -> tuple[xarray.DataArray, xarray.DataArray]:
        forward = self.signal("forward", time=time)
        reflected = self.signal("reflected", time=time)
        if forward.sizes != reflected.sizes or not np.array_equal(
            forward["time"].values, reflected["time"].values
        ):
            # two channels on different time axes: the reflected power at the forward's times
            reflected = reflected.interp(time=forward["time"])
        return forward, reflected
