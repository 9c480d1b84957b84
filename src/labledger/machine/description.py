"""The testbed description: a YAML file of the component tree, the named signals, the DAQ devices
and their ports, and which signal is wired to which port, validated with pydantic.

Every mistake is reported as ``file:line: field: reason``, the line found from the YAML itself.

```yaml
name: ISHTAR
devices:
  PXI M6251: {model: NI PXI-6251, ports: [ai0, ai1, ai2, ai3]}
signals:
  Langmuir_I: {unit: A, calibration: langmuir_i}
  Langmuir_V: {unit: V, calibration: langmuir_v}
wiring:
  Langmuir_V: PXI M6251/ai2
  Langmuir_I:                         # a wiring with periods: from inclusive, until exclusive,
    - {port: PXI M6251/ai3, until: 1240}          # each a run number or an ISO time
    - {port: PXI M6251/ai1, from: 1240}
components:
  langmuir_probe:
    kind: diagnostic
    model: langmuir                   # the diagnostic class (entry point labledger.diagnostics)
    properties: {area: 2.0 mm^2}      # a number with a unit is a pint quantity
    signals: {current: Langmuir_I, voltage: Langmuir_V}
```
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from labledger.errors import BadInput, NotFound
from labledger.machine.units import check_unit, quantity
from labledger.machine.validity import Point, overlaps, parse_point
from labledger.yamltext import line_of, read

if TYPE_CHECKING:
    from labledger.machine.logs import Snapshot
    from labledger.records import ConfigChangeRecord

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TYPE_TAG = re.compile(r"^(str|int|list\[.*\]|dict\[.*\])$")  # pydantic's names of union branches


class DescriptionError(BadInput):
    """A testbed description, or a change to the configuration, that cannot be used."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Device(_Strict):
    """A DAQ device: its ports, and how a port's channel is named in the runs it writes."""

    model: str | None = None
    ports: list[str] = Field(min_length=1)
    channel: str = "{device}/{port}"  # the run's channel key: TDMS "group/channel"

    @field_validator("ports")
    @classmethod
    def _unique(cls, ports: list[str]) -> list[str]:
        seen = {p for p in ports if ports.count(p) > 1}
        if seen:
            raise ValueError(f"port {sorted(seen)[0]!r} is listed twice")
        return ports

    @field_validator("channel")
    @classmethod
    def _template(cls, channel: str) -> str:
        try:
            channel.format(device="D", port="P")
        except (KeyError, IndexError, ValueError):
            raise ValueError(
                f"{channel!r}: a channel name may use {{device}} and {{port}}, nothing else"
            ) from None
        return channel


class Signal(_Strict):
    """A named physical signal: its unit and the calibration that makes it (a wired signal is
    read from its port; a signal with no wire is computed by its calibration's expression)."""

    unit: str | None = None
    calibration: str | None = None
    description: str = ""

    @field_validator("unit")
    @classmethod
    def _unit(cls, unit: str | None) -> str | None:
        return None if unit is None else check_unit(unit)


class WirePeriod(_Strict):
    """A signal on a port over a period: ``from`` inclusive, ``until`` exclusive."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    port: str
    start: int | datetime | None = Field(default=None, alias="from")
    until: int | datetime | None = None

    @field_validator("start", "until", mode="before")
    @classmethod
    def _point(cls, value: Any) -> Point | None:
        if isinstance(value, date) and not isinstance(value, datetime):
            value = value.isoformat()  # YAML reads 2026-11-05 unquoted as a date
        return parse_point(value)

    @model_validator(mode="after")
    def _ordered(self) -> WirePeriod:
        if self.start is not None and self.until is not None:
            if isinstance(self.start, int) != isinstance(self.until, int):
                raise ValueError("give from and until both as run numbers or both as times")
            if self.start >= self.until:  # type: ignore[operator]
                raise ValueError(f"from {self.start} is not before until {self.until}")
        return self


class Component(_Strict):
    """A part of the testbed: a subsystem, a diagnostic, a sensor; may hold other parts."""

    kind: str = "component"
    model: str | None = None
    description: str = ""
    properties: dict[str, Any] = Field(default_factory=dict)
    signals: dict[str, str] = Field(default_factory=dict)  # role -> signal name
    components: dict[str, Component] = Field(default_factory=dict)

    @field_validator("properties")
    @classmethod
    def _quantities(cls, properties: dict[str, Any]) -> dict[str, Any]:
        for value in properties.values():
            quantity(value)  # a bad unit is refused here, with the line
        return properties


class Description(_Strict):
    """A whole testbed description (see the module's docstring for the YAML)."""

    name: str
    description: str = ""
    devices: dict[str, Device] = Field(default_factory=dict)
    signals: dict[str, Signal] = Field(default_factory=dict)
    wiring: dict[str, str | list[WirePeriod]] = Field(default_factory=dict)
    components: dict[str, Component] = Field(default_factory=dict)

    def periods(self, signal: str) -> list[WirePeriod]:
        """The wiring periods of ``signal`` (one open period for a plain ``signal: port``)."""
        wired = self.wiring.get(signal)
        if wired is None:
            return []
        return [WirePeriod(port=wired)] if isinstance(wired, str) else list(wired)

    def walk(self) -> Iterator[tuple[str, Component]]:
        """Every component with its path from the root, parents first."""

        def below(prefix: str, parts: dict[str, Component]) -> Iterator[tuple[str, Component]]:
            for name, part in parts.items():
                path = f"{prefix}{name}"
                yield path, part
                yield from below(f"{path}/", part.components)

        return below("", self.components)

    def channel(self, port: str) -> str:
        """The run's channel key for ``port`` ("device/port")."""
        device, _, name = port.rpartition("/")
        if device not in self.devices:
            raise NotFound(f"{port}: the testbed description has no device {device!r}")
        return self.devices[device].channel.format(device=device, port=name)


def load(path: str | Path) -> tuple[Description, str]:
    """Read and validate a description file; return it and its text.

    >>> from labledger.sim import DESCRIPTION
    >>> load(DESCRIPTION)[0].name
    'ISHTAR'
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DescriptionError(f"{path}: cannot read it ({exc})") from None
    return parse(text, path.name), text


def parse(text: str, name: str = "<description>") -> Description:
    """Validate a description given as YAML text; ``name`` is the file to name in errors."""
    root, data = read(text, name, DescriptionError)
    if not isinstance(data, dict):
        raise DescriptionError(f"{name}:1: a description is a mapping with name, devices, ...")
    try:
        description = Description.model_validate(data)
    except ValidationError as exc:
        # of the alternatives of a union (a port, or a list of periods) the deepest error
        # is the one the author meant
        error = max(exc.errors(), key=lambda e: len(e["loc"]))
        loc = tuple(p for p in error["loc"] if not _TYPE_TAG.match(str(p)))
        raise _error(root, name, loc, error["msg"]) from None
    for loc, reason in _problems(description):
        raise _error(root, name, loc, reason)
    return description


def parsed(snapshot: Snapshot, row: ConfigChangeRecord) -> Description:
    """The description a configuration log entry loaded, parsed once per snapshot of the log
    (both the configuration history and the calibrations check against it)."""
    key = ("description", row.id)
    if key not in snapshot.derived:
        snapshot.derived[key] = Description.model_validate(row.payload["description"])
    return snapshot.derived[key]


def check_port(description: Description, port: str) -> str | None:
    """Why ``port`` ("device/port") is not a port of the described devices, or None."""
    device, _, name = port.rpartition("/")
    if device not in description.devices:
        known = ", ".join(description.devices) or "none are described"
        return f"unknown device {device or port!r} (devices: {known})"
    if name not in description.devices[device].ports:
        ports = ", ".join(description.devices[device].ports)
        return f"{device} has no port {name!r} (its ports: {ports})"
    return None


def _problems(d: Description) -> Iterator[tuple[tuple[Any, ...], str]]:
    """What pydantic cannot see: names that refer to nothing, ports shared in one period."""
    for signal, wired in d.wiring.items():
        if signal not in d.signals:
            yield ("wiring", signal), f"signal {signal!r} is not among the described signals"
        for i, period in enumerate(d.periods(signal)):
            loc: tuple[Any, ...] = (
                ("wiring", signal) if isinstance(wired, str) else ("wiring", signal, i, "port")
            )
            why = check_port(d, period.port)
            if why:
                yield loc, why
    for signal in d.wiring:
        periods = d.periods(signal)
        for i, a in enumerate(periods):
            for j, b in enumerate(periods[i + 1 :], i + 1):
                clash = a.port != b.port and overlaps(a.start, a.until, b.start, b.until)
                if clash:
                    yield ("wiring", signal, j), f"{signal} is on {a.port} and {b.port} ({clash})"
    by_port: dict[str, list[tuple[str, int, WirePeriod]]] = {}
    for signal in d.wiring:
        for i, period in enumerate(d.periods(signal)):
            by_port.setdefault(period.port, []).append((signal, i, period))
    for port, uses in by_port.items():
        for k, (sa, _, pa) in enumerate(uses):
            for sb, ib, pb in uses[k + 1 :]:
                clash = overlaps(pa.start, pa.until, pb.start, pb.until)
                if clash:
                    loc = ("wiring", sb) if isinstance(d.wiring[sb], str) else ("wiring", sb, ib)
                    yield loc, f"{port} carries {sa} and {sb} in the same period ({clash})"
    names: dict[str, str] = {}
    for path, part in d.walk():
        loc = ("components", *_component_loc(path))
        name = path.rpartition("/")[2]
        if not _NAME.fullmatch(name):
            yield loc, f"component name {name!r} is not a Python name (letters, digits, _)"
        if name in names:
            yield loc, f"component name {name!r} is used twice (also at {names[name]})"
        names[name] = path
        for role, signal in part.signals.items():
            if signal not in d.signals:
                yield (
                    (*loc, "signals", role),
                    f"signal {signal!r} is not among the described signals",
                )


def _component_loc(path: str) -> tuple[str, ...]:
    parts = path.split("/")
    loc: list[str] = [parts[0]]
    for part in parts[1:]:
        loc += ["components", part]
    return tuple(loc)


def _error(
    root: yaml.Node | None, name: str, loc: tuple[Any, ...], reason: str
) -> DescriptionError:
    field = ".".join(str(p) for p in loc) or "(top)"
    reason = reason.removeprefix("Value error, ")
    return DescriptionError(f"{name}:{line_of(root, loc)}: {field}: {reason}")
