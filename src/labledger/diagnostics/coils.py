"""Field coils: the magnetic field on axis from the coil current."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from labledger.diagnostics.constants import MU_0
from labledger.diagnostics.flattop import in_units, on_flattop
from labledger.errors import InvalidArgument
from labledger.machine.model import Diagnostic
from labledger.machine.units import magnitude_in, with_unit

if TYPE_CHECKING:
    import pint
    import xarray

TimeWindow = tuple[float, float]


class FieldCoils(Diagnostic):
    """A set of field coils (model ``coils``) taken as one finite solenoid: signal ``current``
    (A); properties ``turns``, ``length`` and ``radius``. The field at its centre is
    ``B = mu0 N I / sqrt(L^2 + 4 R^2)``.

    >>> coils = run.machine.field_coils
    >>> coils.mean_field()
    <Quantity(0.0775..., 'tesla')>
    """

    roles: ClassVar[tuple[str, ...]] = ("current",)

    @property
    def tesla_per_ampere(self) -> pint.Quantity:
        """The field at the centre per ampere of coil current (T/A), from the geometry."""
        turns = _count(self.property("turns"), f"{self.name}.turns")
        length, radius = self.property("length", "m"), self.property("radius", "m")
        return with_unit(MU_0 * turns / float(np.hypot(length, 2 * radius)), "T/A")

    def field_on_axis(self, time: TimeWindow | None = None) -> xarray.DataArray:
        """The field at the centre of the coils in T over ``time`` (default: the whole
        record)."""
        self.require(*self.roles)
        return self._field(self.signal("current", time=time))

    def mean_field(self, time: TimeWindow | None = None) -> pint.Quantity:
        """The mean field at the centre (T) over ``time`` (default: the flat-top of the coil
        current, which may be the whole record: the coils are often on before the plasma)."""
        self.require(*self.roles)
        field = self._field(on_flattop(self, "current", time))
        return with_unit(np.nanmean(field.values), field.attrs["units"])

    def _field(self, current: xarray.DataArray) -> xarray.DataArray:
        field = in_units(current, "A") * magnitude_in(self.tesla_per_ampere, "T/A")
        return (
            current.copy(data=field)
            .assign_attrs(units="T", long_name=f"field on axis of {self.name}")
            .rename("B")
        )


def _count(value: Any, what: str) -> float:
    """A number of turns: a plain number, or a dimensionless quantity."""
    if hasattr(value, "magnitude"):
        if str(value.units) in ("turn", "turns"):  # pint reads "120 turns" as an angle
            return float(value.magnitude)
        if value.dimensionless:
            return float(value.to("").magnitude)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise InvalidArgument(f"{what} = {value!r}: write a number of turns, as 120")
