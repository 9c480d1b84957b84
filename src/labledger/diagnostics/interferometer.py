"""A microwave interferometer: line-integrated density from the phase shift along its chord."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import numpy as np

from labledger.diagnostics.constants import ELECTRON_RADIUS
from labledger.diagnostics.flattop import in_units, on_flattop
from labledger.machine.model import Diagnostic
from labledger.machine.units import magnitude_in, with_unit

if TYPE_CHECKING:
    import pint
    import xarray

TimeWindow = tuple[float, float]


class Interferometer(Diagnostic):
    """An interferometer (model ``interferometer``): signal ``phase`` (rad, the plasma's phase
    shift); properties ``wavelength`` and ``path_length`` (the chord through the plasma).

    Well below the cut-off density the phase shift is ``r_e * wavelength * ∫n dl``
    (``r_e`` the classical electron radius), so the line density is the phase over that.

    >>> chord = run.machine.interferometer
    >>> float(chord.line_density().sel(time=0.2, method="nearest"))   # m^-2
    4.72...e+16
    >>> chord.mean_density()
    <Quantity(3.16...e+17, '1 / meter ** 3')>
    """

    roles: ClassVar[tuple[str, ...]] = ("phase",)

    def line_density(self, time: TimeWindow | None = None) -> xarray.DataArray:
        """The line-integrated density ∫n dl in m^-2 over ``time`` (default: the whole
        record, so that the rise and the fall show)."""
        self.require(*self.roles)
        phase = self.signal("phase", time=time)
        return self._line_density(phase)

    def mean_line_density(self, time: TimeWindow | None = None) -> pint.Quantity:
        """The mean line density (m^-2) over ``time`` (default: the flat-top of the phase)."""
        self.require(*self.roles)
        line = self._line_density(on_flattop(self, "phase", time))
        return with_unit(np.nanmean(line.values), line.attrs["units"])

    def mean_density(self, time: TimeWindow | None = None) -> pint.Quantity:
        """The mean density along the chord (m^-3): the mean line density over ``time``
        (default: the flat-top) over the path length."""
        self.require(*self.roles)
        line = magnitude_in(self.mean_line_density(time), "m^-2")
        return with_unit(line / self.property("path_length", "m"), "m^-3")

    def _line_density(self, phase: xarray.DataArray) -> xarray.DataArray:
        wavelength = self.property("wavelength", "m")
        values = in_units(phase, "rad") / (ELECTRON_RADIUS * wavelength)
        return (
            phase.copy(data=values)
            .assign_attrs(units="m^-2", long_name=f"line-integrated density from {self.name}")
            .rename("nL")
        )
