"""Calibrations: named, versioned functions from what a DAQ port reads to a physical value.

Kinds: ``linear`` (gain, offset), ``polynomial`` (coefficients, lowest order first), ``table``
(points x -> y, interpolated linearly; outside the table the value is NaN, flagged on read) and
``expression`` over other signals (``RF_Pfwd - RF_Pref``). A linear, polynomial or table
calibration reads its signal's port, or with ``input`` another signal's calibrated value, so
calibrations chain. Each version is in force from a run number or a time; a recalibration is a
new version, and every version stays readable.

>>> la.calibrations.add("langmuir_i", kind="linear", gain=-0.01, unit="A", from_run=1250,
...                     reason="new 100 ohm shunt")                        # doctest: +SKIP
>>> la.calibrations["langmuir_i@1"]                                        # doctest: +SKIP
"""

from __future__ import annotations

import ast
import functools
import itertools
import math
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from labledger.catalog import CalibrationRow
from labledger.errors import InvalidArgument, NotFound
from labledger.machine.units import check_unit, registry
from labledger.machine.validity import covers, since, start_of

if TYPE_CHECKING:
    from labledger.machine.logs import Logs

KINDS = ("linear", "polynomial", "table", "expression")
FUNCTIONS = {
    name: getattr(np, name)
    for name in ("sqrt", "exp", "log", "log10", "abs", "sin", "cos", "tan", "arctan", "arctan2")
}
_OPERATORS = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow, ast.USub, ast.UAdd)


class CalibrationError(InvalidArgument):
    """A calibration that cannot be recorded or applied."""


@dataclass(frozen=True)
class Calibration:
    """One version of a named calibration (``name@version``)."""

    name: str
    version: int
    kind: str
    params: dict[str, Any]
    unit: str
    from_run: int | None
    from_time: datetime | None
    author: str
    reason: str
    created: datetime

    @classmethod
    def from_row(cls, row: CalibrationRow) -> Calibration:
        return cls(
            row.name,
            row.version,
            row.kind,
            row.params,
            row.unit,
            row.from_run,
            row.from_time,
            row.author,
            row.reason,
            row.created,
        )

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}"

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"<Calibration {self.label} {self.kind}({shown}) -> {self.unit}, {self.valid_from}>"

    @property
    def valid_from(self) -> str:
        return since(self.from_run, self.from_time)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "label": self.label,
            "kind": self.kind,
            "params": self.params,
            "unit": self.unit,
            "from_run": self.from_run,
            "from_time": self.from_time.isoformat() if self.from_time else None,
            "author": self.author,
            "reason": self.reason,
            "created": self.created.isoformat(),
        }

    @property
    def inputs(self) -> list[str]:
        """The signals it reads: an expression's names, or the ``input`` it chains onto."""
        if self.kind == "expression":
            return expression_names(self.params["expression"])
        return [self.params["input"]] if self.params.get("input") else []

    def affine(self) -> tuple[float, float] | None:
        """``(gain, offset)`` if the calibration is ``gain * x + offset``, so that it can be
        folded with a DAQ's own linear scaling into one pass over the data."""
        if self.kind == "linear":
            return float(self.params["gain"]), float(self.params.get("offset", 0.0))
        if self.kind == "polynomial" and len(self.params["coefficients"]) <= 2:
            c = [*self.params["coefficients"], 0.0]
            return float(c[1]), float(c[0])
        return None

    def apply(self, x: np.ndarray) -> np.ndarray:
        """The calibrated values of ``x`` (a port's or an input signal's values)."""
        if self.kind == "linear" or self.affine() is not None:
            gain, offset = self.affine()  # type: ignore[misc]
            return x * gain + offset
        if self.kind == "polynomial":
            return np.polynomial.polynomial.polyval(x, self.params["coefficients"])
        if self.kind == "table":
            return np.interp(x, self.params["x"], self.params["y"], left=np.nan, right=np.nan)
        raise CalibrationError(f"{self.label} is an expression; evaluate it over its signals")

    def evaluate(self, values: dict[str, Any]) -> Any:
        """An expression's value given its input signals' values (arrays or quantities)."""
        code = _compiled(self.params["expression"])
        return eval(code, {"__builtins__": {}}, {**FUNCTIONS, **values})  # checked: names, math


def check(kind: str, params: dict[str, Any], unit: str) -> dict[str, Any]:
    """The parameters of a calibration, checked and normalised; a clear error if they cannot
    make one (a non-finite number would hide, not flag, bad data)."""
    if kind not in KINDS:
        raise CalibrationError(f"unknown calibration kind {kind!r}; use one of {', '.join(KINDS)}")
    try:
        check_unit(unit)
    except ValueError as exc:
        raise CalibrationError(f"unit: {exc}") from None
    given = {k: v for k, v in params.items() if v is not None}
    needed = {
        "linear": ({"gain"}, {"offset", "input"}),
        "polynomial": ({"coefficients"}, {"input"}),
        "table": ({"x", "y"}, {"input"}),
        "expression": ({"expression"}, set()),
    }[kind]
    missing = needed[0] - set(given)
    extra = set(given) - needed[0] - needed[1]
    if missing:
        raise CalibrationError(f"a {kind} calibration needs {', '.join(sorted(missing))}")
    if extra:
        raise CalibrationError(f"a {kind} calibration takes no {', '.join(sorted(extra))}")
    out: dict[str, Any] = {}
    if "input" in given:
        out["input"] = str(given["input"])
    if kind == "linear":
        out["gain"] = _finite(given["gain"], "gain")
        out["offset"] = _finite(given.get("offset", 0.0), "offset")
    elif kind == "polynomial":
        out["coefficients"] = _numbers(given["coefficients"], "coefficients", least=1)
    elif kind == "table":
        x, y = _numbers(given["x"], "x", least=2), _numbers(given["y"], "y", least=2)
        if len(x) != len(y):
            raise CalibrationError(f"table: {len(x)} x points but {len(y)} y points")
        if any(b <= a for a, b in itertools.pairwise(x)):
            raise CalibrationError("table: the x points must increase strictly")
        out["x"], out["y"] = x, y
    else:
        text = str(given["expression"])
        _parse(text)
        out["expression"] = text
    return out


def expression_names(text: str) -> list[str]:
    """The signal names an expression reads, in order of appearance."""
    found = [n for n in ast.walk(_parse(text)) if isinstance(n, ast.Name) and n.id not in FUNCTIONS]
    found.sort(key=lambda n: (n.lineno, n.col_offset))
    return list(dict.fromkeys(n.id for n in found))


def expression_unit(calibration: Calibration, units: dict[str, str]) -> str:
    """The unit an expression yields from its inputs' units; a clear error if they do not
    combine (adding watts to amperes, the log of a power)."""
    text = calibration.params["expression"]
    try:
        return _expression_unit(text, tuple(units.items()))
    except Exception as exc:
        raise CalibrationError(
            f"{calibration.label}: {text!r} does not combine the units of its signals "
            f"({', '.join(f'{k} in {v}' for k, v in units.items())}): {exc}"
        ) from None


@functools.lru_cache(maxsize=1024)
def _expression_unit(text: str, units: tuple[tuple[str, str], ...]) -> str:
    # pint takes a millisecond over it: once per expression and input units, not per run
    ureg = registry()
    values = {name: ureg.Quantity(1.0, unit) for name, unit in units}
    result = eval(_compiled(text), {"__builtins__": {}}, {**FUNCTIONS, **values})
    return f"{ureg.Quantity(result).units:~}" or "dimensionless"


@functools.lru_cache(maxsize=1024)
def _compiled(text: str) -> Any:
    return compile(_parse(text), "<expression>", "eval")


def _parse(text: str) -> ast.Expression:
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise CalibrationError(f"expression {text!r} is not arithmetic: {exc.msg}") from None
    for node in ast.walk(tree):
        ok = isinstance(
            node, (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Name, ast.Load, *_OPERATORS)
        )
        ok = ok or (isinstance(node, ast.Constant) and type(node.value) in (int, float))
        if isinstance(node, ast.Call):
            ok = isinstance(node.func, ast.Name) and node.func.id in FUNCTIONS and not node.keywords
        if not ok:
            raise CalibrationError(
                f"expression {text!r}: only signal names, numbers, + - * / ** and "
                f"{', '.join(FUNCTIONS)} are allowed"
            )
    return tree


def _finite(value: Any, name: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise CalibrationError(f"{name}={value!r} is not a number") from None
    if not math.isfinite(number):
        raise CalibrationError(f"{name}={value!r}: a calibration's numbers must be finite")
    return number


def _numbers(values: Any, name: str, least: int) -> list[float]:
    if isinstance(values, str):
        values = [v for v in values.replace(",", " ").split() if v]
    try:
        numbers = [_finite(v, name) for v in values]
    except TypeError:
        raise CalibrationError(f"{name}={values!r} is not a list of numbers") from None
    if len(numbers) < least:
        raise CalibrationError(f"{name} needs at least {least} numbers")
    return numbers


class Calibrations:
    """An archive's calibrations: ``la.calibrations["langmuir_i@2"]``, ``list()``, ``add()``,
    and :meth:`for_run`, the version in force for a run."""

    def __init__(self, logs: Logs, add: Any):
        self._logs = logs
        self._add = add  # the archive's recorder: checks against the machine, then appends

    def list(self, name: str | None = None) -> list[Calibration]:
        """Every version of every calibration (or of ``name``), by name and version."""
        found = self._logs.current().calibrations
        if name is not None and name not in found:
            raise NotFound(self._unknown(name, found))
        rows = found[name] if name else [r for rows in found.values() for r in rows]
        return [Calibration.from_row(r) for r in rows]

    def __getitem__(self, label: str) -> Calibration:
        name, _, version = label.partition("@")
        found = self._logs.current().calibrations
        if name not in found:
            raise NotFound(self._unknown(name, found))
        if not version.isdigit():
            raise NotFound(
                f"{label!r}: name a version as {name}@N (versions 1..{len(found[name])})"
            )
        rows = [r for r in found[name] if r.version == int(version)]
        if not rows:
            raise NotFound(f"{name} has no version {version} (versions 1..{len(found[name])})")
        return Calibration.from_row(rows[0])

    def for_run(self, name: str, number: int, started: datetime) -> Calibration:
        """The version in force for a run: the newest whose validity has begun by then."""
        found = self._logs.current().calibrations
        rows = [
            r
            for r in found.get(name, [])
            if covers(start_of(r.from_run, r.from_time), None, number, started)
        ]
        if not rows:
            if name in found:
                first = Calibration.from_row(found[name][0])
                raise NotFound(
                    f"no version of calibration {name} is in force for run {number} "
                    f"(version 1 is {first.valid_from}); read it with an explicit "
                    f"calibration='{name}@N' or add one valid from earlier"
                )
            raise NotFound(self._unknown(name, found))
        return Calibration.from_row(max(rows, key=lambda r: r.version))

    def add(
        self,
        name: str,
        *,
        kind: str = "linear",
        unit: str,
        reason: str,
        from_run: int | None = None,
        from_time: str | datetime | None = None,
        **params: Any,
    ) -> Calibration:
        """Record a new version of ``name`` (version 1 if it is new). ``params`` by kind:
        ``gain``, ``offset``; ``coefficients``; ``x``, ``y``; ``expression``; and ``input``
        to chain onto another signal. Refused, with nothing recorded, if it cannot work:
        unknown signals, a cycle, units that do not combine, numbers that are not finite."""
        return self._add(name, kind, unit, reason, from_run, from_time, params)

    def _unknown(self, name: str, found: dict[str, Any]) -> str:
        import difflib

        close = difflib.get_close_matches(name, list(found), n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        return f"no calibration is named {name!r}{hint} (list them with `labledger calib list`)"
