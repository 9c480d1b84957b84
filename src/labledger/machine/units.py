"""Physical units: one pint registry for the whole package, and the checks of unit strings.

Signals carry their unit as a pint-compatible string in ``attrs["units"]`` (the CF and
pint-xarray convention), so ``pint_xarray`` or ``pint.Quantity(values, attrs["units"])`` pick
it up. Single numbers that have a unit (a property, a diagnostic's result) are pint quantities
of this registry, so that they can be added, compared and converted with one another.
"""

from __future__ import annotations

import functools
import math
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pint

_QUANTITY = re.compile(r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*[^\d\s.eE+-]")


@functools.cache
def registry() -> pint.UnitRegistry:
    """The package's unit registry (built once: it takes a tenth of a second)."""
    import pint

    return pint.UnitRegistry()


def check_unit(text: str) -> str:
    """``text`` if pint knows it as a unit, else ``ValueError`` saying so.

    >>> check_unit("mm^2")
    'mm^2'
    """
    import pint

    try:
        registry().Unit(text)
    except (pint.UndefinedUnitError, pint.errors.DefinitionSyntaxError, ValueError, TypeError):
        raise ValueError(
            f"{text!r} is not a unit pint knows (write it as W, A, m^-3, mm^2)"
        ) from None
    except AssertionError:  # pint's tokenizer on some garbage
        raise ValueError(f"{text!r} is not a unit pint knows") from None
    return text


def quantity(value: Any) -> Any:
    """A property's value: a string that starts with a number is a quantity ("2.0 mm^2"),
    anything else stays as it is.

    >>> quantity("2 mm^2").to("m^2").magnitude
    2e-06
    >>> quantity("Ar")
    'Ar'
    """
    if isinstance(value, str) and _QUANTITY.match(value):
        try:
            found: pint.Quantity[float] = registry().Quantity(value)
        except Exception as exc:  # pint raises a zoo of types for a bad unit
            raise ValueError(f"{value!r} is not a number with a unit pint knows ({exc})") from None
        if not math.isfinite(found.magnitude):
            raise ValueError(f"{value!r} is not a finite number")
        return found
    return value


def same_dimension(unit: str, other: str) -> bool:
    """Whether values in ``unit`` can be expressed in ``other``."""
    return registry().Unit(unit).dimensionality == registry().Unit(other).dimensionality


def factor(unit: str, to: str) -> float:
    """What a value in ``unit`` is multiplied by to be in ``to``; ``ValueError`` if it cannot.

    >>> factor("mA", "A")
    0.001
    """
    try:
        return float(registry().Quantity(1.0, unit).to(to).magnitude)
    except Exception:  # pint raises a zoo of types: unknown units, other dimensions
        raise ValueError(f"a value in {unit} cannot be expressed in {to}") from None


def with_unit(magnitude: float, unit: str) -> pint.Quantity:
    """``magnitude`` in ``unit``, as a quantity of the package's registry.

    >>> with_unit(4.5, "eV").to("J").magnitude  # doctest: +ELLIPSIS
    7.2097...e-19
    """
    return registry().Quantity(float(magnitude), unit)


def magnitude_in(value: pint.Quantity, unit: str) -> float:
    """The magnitude of ``value`` in ``unit``; ``ValueError`` naming both if it has another
    dimension.

    >>> magnitude_in(quantity("2.0 mm^2"), "m^2")
    2e-06
    """
    try:
        return float(value.to(unit).magnitude)
    except Exception:  # pint's DimensionalityError, or a unit it does not know
        raise ValueError(f"{value:~} is not in a unit of {_dimension(unit)} (as {unit})") from None


def _dimension(unit: str) -> str:
    """The dimension of ``unit`` in words: ``[length] ** 2`` for m^2."""
    try:
        return str(registry().Unit(unit).dimensionality)
    except Exception:
        return unit
