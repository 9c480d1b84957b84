"""Calibrations: named, versioned functions from what a DAQ port reads to a physical value.

Kinds: ``linear`` (gain, offset), ``polynomial`` (coefficients, lowest order first), ``table``
(points x -> y, interpolated linearly; outside the table the value is NaN, flagged on read) and
``expression`` over other signals (``RF_Pfwd - RF_Pref``). A linear, polynomial or table
calibration reads its signal's port, or with ``input`` another signal's calibrated value, so
calibrations chain. Each version is in force from a run number or a time; a recalibration is a
new version, and every version stays readable.

>>> la.calibrations.add("langmuir_i", kind="linear", gain=-0.0098, unit="A", from_run=1260,
...                     reason="shunt measured: 102 ohm")
<Calibration langmuir_i@3 linear(gain=-0.0098, offset=0.0) -> A, from run 1260>
>>> la.calibrations["langmuir_i@1"]
<Calibration langmuir_i@1 linear(gain=-0.02, offset=0.0) -> A, always>
"""

from __future__ import annotations

import ast
import difflib
import functools
import itertools
import math
import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from labledger.display import html_table
from labledger.errors import InvalidArgument, NotFound
from labledger.ids import author
from labledger.machine.description import parsed
from labledger.machine.units import check_unit, registry, same_dimension
from labledger.machine.validity import covers, since, start_of, validity
from labledger.records import CalibrationRecord, RunCatalog

if TYPE_CHECKING:
    from labledger.machine.logs import Logs, Snapshot

KINDS = ("linear", "polynomial", "table", "expression")
FUNCTIONS = {
    name: getattr(np, name)
    for name in ("sqrt", "exp", "log", "log10", "abs", "sin", "cos", "tan", "arctan", "arctan2")
}
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")  # whole: `$` would let a final \n in
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
    # True when :meth:`Calibrations.add` recorded nothing: this very calibration was in force
    already: bool = field(default=False, compare=False)

    @classmethod
    def from_row(cls, row: CalibrationRecord) -> Calibration:
        """The version a catalog row records."""
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
        """``name@version``, as signals' attributes and ``calibration=`` name it."""
        return f"{self.name}@{self.version}"

    def __repr__(self) -> str:
        return (
            f"<Calibration {self.label} {self.kind}({self.shown_params}) -> {self.unit}, "
            f"{self.valid_from}>"
        )

    @property
    def shown_params(self) -> str:
        """Its parameters in a few words: a table's points counted, not listed.

        >>> points = {"x": [0, 1, 2, 3, 4], "y": [0, 2, 4, 6, 8]}
        >>> Calibration("t", 1, "table", points, "V", None, None, "me", "why",
        ...             datetime(2026, 1, 1)).shown_params
        'x=[5 values], y=[5 values]'
        """
        many = {k for k, v in self.params.items() if isinstance(v, (list, tuple)) and len(v) > 4}
        return ", ".join(
            f"{k}=[{len(v)} values]" if k in many else f"{k}={v!r}" for k, v in self.params.items()
        )

    COLUMNS = ("calibration", "kind", "parameters", "unit", "in force", "by", "reason")

    def row(self) -> tuple[Any, ...]:
        """Its facts in the order of :attr:`COLUMNS`, as tables show them."""
        return (
            self.label,
            self.kind,
            self.shown_params,
            self.unit,
            self.valid_from,
            self.author,
            self.reason,
        )

    def _repr_html_(self) -> str:
        return html_table([self.row()], header=self.COLUMNS)

    @property
    def valid_from(self) -> str:
        """From when it is in force, in words."""
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
        with np.errstate(all="ignore"):  # NaN and inf are counted and flagged where they land
            return eval(code, {"__builtins__": {}}, {**FUNCTIONS, **values})  # checked: names


def check(kind: str, params: dict[str, Any], unit: str) -> dict[str, Any]:
    """The parameters of a calibration, checked and normalised; a clear error if they cannot
    make one (a non-finite number would hide, not flag, bad data)."""
    if kind not in KINDS:
        raise CalibrationError(f"unknown calibration kind {kind!r}; use one of {', '.join(KINDS)}")
    try:
        if not isinstance(unit, str) or not unit.strip():
            raise ValueError("give the unit the calibration yields, e.g. A, W, m^-3")
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
        if not expression_names(text):
            raise CalibrationError(
                f"expression {text!r} reads no signal: a constant is not a calibration"
            )
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
    except OverflowError:
        raise CalibrationError(f"{calibration.label}: {text!r}: a number in it overflows") from None
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
    # integers become floats: 9**9**9 overflows at once instead of computing for ever
    tree = _Floats().visit(_parse(text))
    return compile(ast.fix_missing_locations(tree), "<expression>", "eval")


class _Floats(ast.NodeTransformer):
    def visit_Constant(self, node: ast.Constant) -> ast.Constant:
        # _parse lets no other constant through than int and float
        if not isinstance(node.value, (int, float)):
            return node
        return ast.copy_location(ast.Constant(float(node.value)), node)


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


def by_label(snapshot: Snapshot, label: str) -> Calibration:
    """The calibration version ``name@N``."""
    name, _, version = label.partition("@")
    found = snapshot.calibrations
    if name not in found:
        raise NotFound(_unknown(name, found))
    versions = ", ".join(f"{name}@{r.version}" for r in found[name])
    rows = [r for r in found[name] if version.isdigit() and r.version == int(version)]
    if not rows:
        raise NotFound(f"no calibration {label!r}: write name@N (there are {versions})")
    return Calibration.from_row(rows[0])


def in_force(snapshot: Snapshot, name: str, number: int, started: datetime) -> Calibration | None:
    """The version of ``name`` in force for a run: the newest whose validity has begun by then
    (a correction dated back supersedes what came before it, for the runs it covers)."""
    rows = [
        r
        for r in snapshot.calibrations.get(name, [])
        if covers(start_of(r.from_run, r.from_time), None, number, started)
    ]
    return Calibration.from_row(max(rows, key=lambda r: r.version)) if rows else None


class Calibrations:
    """An archive's calibrations: ``la.calibrations["langmuir_i@2"]``, ``list()``, ``add()``,
    and :meth:`for_run`, the version in force for a run."""

    def __init__(self, logs: Logs, catalog: RunCatalog):
        self._logs = logs
        self._catalog = catalog

    def __repr__(self) -> str:
        found = self._logs.current().calibrations
        versions = sum(len(rows) for rows in found.values())
        return f"<Calibrations: {len(found)} names, {versions} versions>"

    def _repr_html_(self) -> str:
        rows = [c.row() for c in self.list()]
        return html_table(rows, header=Calibration.COLUMNS, title="calibrations")

    def list(self, name: str | None = None) -> list[Calibration]:
        """Every version of every calibration (or of ``name``), by name and version."""
        found = self._logs.current().calibrations
        if name is not None and name not in found:
            raise NotFound(_unknown(name, found))
        rows = found[name] if name else [r for rows in found.values() for r in rows]
        return [Calibration.from_row(r) for r in rows]

    def __getitem__(self, label: str) -> Calibration:
        return by_label(self._logs.current(), label)

    def for_run(self, name: str, number: int, started: datetime) -> Calibration:
        """The version in force for a run: the newest whose validity has begun by then."""
        snapshot = self._logs.current()
        found = in_force(snapshot, name, number, started)
        if found is None:
            if name in snapshot.calibrations:
                first = Calibration.from_row(snapshot.calibrations[name][0])
                raise NotFound(
                    f"no version of calibration {name} is in force for run {number} "
                    f"(version 1 is {first.valid_from}); read it with an explicit "
                    f"calibration='{name}@N' or add one valid from earlier"
                )
            raise NotFound(_unknown(name, snapshot.calibrations))
        return found

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
        to chain onto another signal. Refused, with nothing recorded, if it cannot work: a
        unit that is not the dimension of the signals it makes, unknown signals, a cycle,
        units that do not combine, numbers that are not finite.

        The same calibration as the one already in force from its start on (the newest
        version, begun by then, of the same kind, parameters and unit) is not recorded again:
        that version is returned, with ``already`` True.

        >>> la.calibrations.add("langmuir_i", gain=-0.01, unit="A", from_run=1265,
        ...                     reason="checked").already                # as @2, from 1250
        True
        """
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise CalibrationError(
                f"calibration name {name!r}: letters, digits and _, at most 128, not a digit first"
            )
        if not reason or not reason.strip():
            raise CalibrationError("say why: a calibration needs a reason")
        checked = check(kind, params, unit)
        start_run, start_time = validity(from_run, from_time)
        now = datetime.now(UTC)
        new = Calibration(
            name, 0, kind, checked, unit, start_run, start_time, author(), reason, now
        )
        snapshot = self._logs.current()
        same = _same_in_force(new, snapshot)
        if same is not None:
            return replace(same, already=True)
        _check_against_machine(new, snapshot)
        row = CalibrationRecord(
            name=name,
            version=0,
            kind=kind,
            params=checked,
            unit=unit,
            from_run=start_run,
            from_time=start_time,
            author=new.author,
            reason=reason.strip(),
            created=now,
        )
        return Calibration.from_row(self._catalog.append_calibration(row))


def _same_in_force(new: Calibration, snapshot: Snapshot) -> Calibration | None:
    """The version that makes ``new`` change nothing, or None: the newest version of its name
    (so it, and ``new`` after it, would be in force for every run from its start on), begun
    by ``new``'s start, of the same kind, parameters and unit. A start by run number and one
    by time cannot be compared: such a version is recorded."""
    rows = snapshot.calibrations.get(new.name, [])
    if not rows:
        return None
    newest = Calibration.from_row(max(rows, key=lambda r: r.version))
    what = (newest.kind, newest.params, newest.unit.strip())
    if what != (new.kind, new.params, new.unit.strip()):
        return None
    begun = start_of(newest.from_run, newest.from_time)
    start = start_of(new.from_run, new.from_time)
    if begun is None:
        return newest
    if start is None or isinstance(begun, int) != isinstance(start, int):
        return None
    return newest if begun <= start else None  # type: ignore[operator]


def _check_against_machine(new: Calibration, snapshot: Snapshot) -> None:
    """Against every description recorded: the signals made by this calibration must be of its
    unit's dimension; an expression's or chain's inputs must be described signals, must not
    lead back to the signal itself, and their units must combine into the calibration's."""
    descriptions = [parsed(snapshot, r) for r in snapshot.changes if r.kind == "description"]
    if new.inputs and not descriptions:
        raise CalibrationError(
            f"{new.name}: load a testbed description first; it names the signals "
            f"{', '.join(new.inputs)} are checked against"
        )
    for i, description in enumerate(descriptions):
        # the newest description, and every older one with a signal this calibration makes
        if i == len(descriptions) - 1 or any(
            spec.calibration == new.name for spec in description.signals.values()
        ):
            _check_in(new, description.signals, snapshot)


def _check_in(new: Calibration, signals: dict[str, Any], snapshot: Snapshot) -> None:
    """The checks of :func:`_check_against_machine` in one description's signals."""
    users = [s for s, spec in signals.items() if spec.calibration == new.name]
    for signal in users:
        unit = signals[signal].unit
        if unit and not same_dimension(new.unit, unit):
            raise CalibrationError(
                f"{new.name}: yields {new.unit}, but makes {signal}, which is in {unit}"
            )
    for n in new.inputs:
        if n not in signals:
            close = difflib.get_close_matches(n, list(signals), n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise CalibrationError(f"{new.name}: {n!r} is not a signal of the testbed{hint}")

    def calibration_of(signal: str) -> Calibration | None:
        name = signals[signal].calibration
        if name == new.name:
            return new
        rows = snapshot.calibrations.get(name or "", [])
        return Calibration.from_row(rows[-1]) if rows else None

    def unit_of(signal: str, path: tuple[str, ...]) -> str | None:
        if signal in path:
            raise CalibrationError(
                f"{new.name}: forms a cycle: {' -> '.join([*path, signal])}; a signal "
                "cannot be computed from itself"
            )
        cal = calibration_of(signal)
        if cal is None:
            return signals[signal].unit
        for n in cal.inputs:
            if n not in signals:
                return None  # an older calibration's input that this description dropped
            unit_of(n, (*path, signal))
        return signals[signal].unit or cal.unit

    # where each check's path starts: at a signal this calibration makes, or at none
    starts: list[tuple[str, ...]] = [(s,) if s else () for s in users] or [()]
    for start in starts:
        units = {n: unit_of(n, start) for n in new.inputs}
        if new.kind == "expression" and all(units.values()):
            unit = expression_unit(new, {n: u for n, u in units.items() if u})
            if not same_dimension(unit, new.unit):
                raise CalibrationError(
                    f"{new.name}: {new.params['expression']!r} yields {unit}, not {new.unit}"
                )


def _unknown(name: str, found: dict[str, Any]) -> str:
    close = difflib.get_close_matches(name, list(found), n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return f"no calibration is named {name!r}{hint} (list them with `labledger calib list`)"
