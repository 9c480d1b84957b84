"""Structure descriptions: what a kind of run (``helicon-shot``, ``xas-scan``) is made of,
declared in YAML, checked when a file is ingested against it and when a live run is prepared.

A structure is the hierarchy of the BLISS Data Manager (sequence > scan > acquisition): its
levels, outermost first, each with a parameter set; and the channels every run of the kind
must hold (``always_saved``). A run is one node of each level. Its metadata gives the
parameters as flat keys, whatever their level (the parameter ``gas`` is ``metadata["gas"]``: the
keys a file's properties become and a search asks for); its channels hang below the last level
(:meth:`Structure.tree`). docs/structures.md has the YAML and the rules.

>>> shot = parse('''
... name: helicon-shot
... levels:
...   - name: shot
...     parameters:
...       gas: {type: text, allowed: [Ar, He]}
...       rf_power_setpoint: {type: number, unit: W, min: 0, max: 5000}
...   - name: acquisition
... always_saved: [Coil_I, "PXI M6251/ai6"]
... ''')
>>> shot.check_metadata({"gas": "Ar", "rf_power_setpoint": 3000.0, "name": "shot 7"})
>>> shot.check_metadata({"gas": "Xe", "rf_power_setpoint": 3000.0})
Traceback (most recent call last):
labledger.errors.InvalidArgument: structure helicon-shot: gas (shot) is 'Xe'; it must be one of ...
>>> wiring = {"Coil_I": "PXI M6251/ai2"}
>>> shot.missing(["PXI M6251/ai2"], wiring.get, {})
['PXI M6251/ai6']
>>> incomplete(shot.missing(["PXI M6251/ai6"], wiring.get, {}))
'incomplete: missing Coil_I'
"""

from __future__ import annotations

import difflib
import math
import numbers
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from labledger.catalog import Catalog
from labledger.errors import BadInput, InvalidArgument, NotFound
from labledger.formats.base import tree_node
from labledger.ids import author, check_reason
from labledger.records import ChannelRecord, RunRecord
from labledger.times import parse_time
from labledger.yamltext import line_of, read

__all__ = [
    "SETTING_PREFIX",
    "TYPES",
    "WAIVED_KEY",
    "Against",
    "Level",
    "Parameter",
    "Resolve",
    "Structure",
    "StructureError",
    "Structures",
    "incomplete",
    "load",
    "parse",
]

TYPES = ("number", "integer", "text", "bool", "time")
WAIVED_KEY = "labledger:waived"  # the run metadata holding the waivers given: {name: reason}
SETTING_PREFIX = "structure:"  # each version a setting of its own: "structure:helicon-shot@2"
Resolve = Callable[[str], str | None]  # a signal name -> the run's channel key, None: not wired

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")  # the settings' key holds 64 characters
_LEVEL = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")
_TOP_KEYS = ("name", "description", "levels", "always_saved")
_LEVEL_KEYS = ("name", "description", "parameters")
_PARAMETER_KEYS = ("type", "unit", "required", "allowed", "min", "max", "description")
_MAX_KEY = 255  # a metadata key longer than this is not indexed for search
_SHOWN = 60


class StructureError(BadInput):
    """A structure description that cannot be used: ``file:line: field: reason``."""


@dataclass(frozen=True)
class Parameter:
    """One parameter of a level: its type, unit, whether a run must give it, and what values
    it may take (``allowed``, or ``min``/``max`` for numbers)."""

    name: str
    level: str
    type: str
    unit: str | None = None
    required: bool = True
    allowed: tuple[Any, ...] | None = None
    min: float | None = None
    max: float | None = None
    description: str = ""

    def rule(self) -> str:
        """What the parameter may be, in words.

        >>> Parameter("p", "shot", "number", unit="Pa", min=0, max=10).rule()
        'a number in Pa from 0 to 10'
        """
        if self.allowed is not None:
            return "one of " + ", ".join(repr(v) for v in self.allowed)
        words = {
            "number": "a number",
            "integer": "a whole number",
            "text": "text",
            "bool": "true or false",
            "time": "a time (ISO 8601, e.g. 2026-11-07T12:24:00)",
        }[self.type]
        if self.unit:
            words += f" in {self.unit}"
        if self.min is not None and self.max is not None:
            words += f" from {self.min:g} to {self.max:g}"
        elif self.min is not None:
            words += f" of at least {self.min:g}"
        elif self.max is not None:
            words += f" of at most {self.max:g}"
        return words

    def accepts(self, value: Any) -> bool:
        """Whether ``value`` is of the parameter's type and among what it allows.

        >>> shot = Parameter("shot", "scan", "integer", min=0)
        >>> shot.accepts(1234.0), shot.accepts(12.5), shot.accepts(True), shot.accepts(-1)
        (True, False, False, False)
        """
        if not _of_type(value, self.type):
            return False
        if self.allowed is not None:
            return any(_same(value, a) for a in self.allowed)
        if self.min is not None and value < self.min:
            return False
        return not (self.max is not None and value > self.max)

    def to_dict(self) -> dict[str, Any]:
        found = {
            "type": self.type,
            "unit": self.unit,
            "required": self.required,
            "allowed": list(self.allowed) if self.allowed is not None else None,
            "min": self.min,
            "max": self.max,
            "description": self.description or None,
        }
        return {k: v for k, v in found.items() if v is not None}


@dataclass(frozen=True)
class Level:
    """A level of the hierarchy (a sequence, a scan, an acquisition) and its parameter set."""

    name: str
    parameters: tuple[Parameter, ...] = ()
    description: str = ""


@dataclass(frozen=True)
class Structure:
    """A kind of run: its levels, outermost first, and the names every run of it must hold
    (signal names of the testbed description, or channel keys). Read from YAML by
    :func:`parse`; kept in an archive's registry (:class:`Structures`), where it has a
    ``version``, who added it, when and why."""

    name: str
    levels: tuple[Level, ...]
    always_saved: tuple[str, ...] = ()
    description: str = ""
    text: str = field(default="", repr=False)  # the YAML it was read from
    version: int | None = None  # None: not recorded in an archive
    reason: str | None = None
    author: str | None = None
    created: datetime | None = None
    already: bool = field(default=False, compare=False)  # added again unchanged: not recorded

    @property
    def label(self) -> str:
        """``name@version``, or the name alone for a structure not recorded."""
        return self.name if self.version is None else f"{self.name}@{self.version}"

    @property
    def parameters(self) -> dict[str, Parameter]:
        """Every parameter by name, outermost level first."""
        return {p.name: p for level in self.levels for p in level.parameters}

    def __repr__(self) -> str:
        shape = " > ".join(level.name for level in self.levels)
        saved = ", ".join(self.always_saved) or "nothing"
        return f"<Structure {self.label}: {shape}; always saved: {saved}>"

    def check_metadata(self, metadata: Mapping[str, Any]) -> None:
        """Raise :class:`InvalidArgument` naming the first parameter of ``metadata`` (a run's
        flat metadata) that is missing though required, or not what the structure allows, and
        what is allowed; keys that are no parameter are left alone."""
        if not isinstance(metadata, Mapping):
            raise InvalidArgument(
                f"structure {self.name}: metadata must be a mapping of parameter -> value, "
                f"not {type(metadata).__name__}"
            )
        problems = []
        for level in self.levels:
            nested = metadata.get(level.name)
            if isinstance(nested, Mapping) and level.name not in self.parameters:
                problems.append(
                    f"metadata[{level.name!r}] is a mapping, but a structure's parameters are "
                    f"flat keys of the metadata (metadata['energy'], not "
                    f"metadata[{level.name!r}]['energy']): give them so"
                )
            for p in level.parameters:
                if p.name not in metadata or metadata[p.name] is None:
                    if p.required:
                        problems.append(f"{p.name} ({level.name}) is missing: give {p.rule()}")
                elif not p.accepts(metadata[p.name]):
                    problems.append(
                        f"{p.name} ({level.name}) is {_shown(metadata[p.name])}; it must be "
                        f"{p.rule()}"
                    )
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise InvalidArgument(f"structure {self.name}: {problems[0]}{more}")

    def check_waivers(self, waivers: Mapping[str, str] | None) -> dict[str, str]:
        """``waivers`` ({name: reason}) checked: each names something always saved and says
        why it may be missing; the reasons stripped.

        >>> kind = parse("name: k\\nlevels: [{name: shot}]\\nalways_saved: [Pressure]")
        >>> kind.check_waivers({"Pressure": " gauge out "})
        {'Pressure': 'gauge out'}
        """
        if waivers is None:
            return {}
        if not isinstance(waivers, Mapping):
            raise InvalidArgument(
                f"waivers: a mapping of always-saved name -> reason, e.g. "
                f"{{'Pressure': 'gauge out'}}, not {type(waivers).__name__}"
            )
        checked = {}
        for name, reason in waivers.items():
            if name not in self.always_saved:
                saved = ", ".join(self.always_saved) or "nothing"
                raise InvalidArgument(
                    f"waiver {name!r}: structure {self.name} does not say it is always saved "
                    f"(it says: {saved}); waive only those"
                )
            checked[name] = check_reason(reason, f"the waiver of {name}")
        return checked

    def missing(
        self,
        channel_keys: Iterable[str],
        resolve: Resolve,
        waivers: Mapping[str, str] | None = None,
    ) -> list[str]:
        """The always-saved names a run with ``channel_keys`` lacks, in the structure's order,
        but those ``waivers`` waive. A name is held if it is one of the keys, or if
        ``resolve(name)`` (a signal name -> its channel key in the configuration in force,
        None if not wired) is."""
        waived = self.check_waivers(waivers)
        keys = set(channel_keys)
        return [
            name
            for name in self.always_saved
            if name not in waived and name not in keys and resolve(name) not in keys
        ]

    def tree(self, metadata: Mapping[str, Any], channels: Iterable[ChannelRecord]) -> dict:
        """The run's tree in the node format of :mod:`labledger.formats.base`: one group per
        level, nested outermost first, its parameters found in ``metadata`` as attributes (and
        their units under ``units``); the channels below the last level, their keys' parts as
        groups (``PXI M6251/ai2``: group ``PXI M6251``, channel ``ai2``).

        >>> s = parse("name: k\\nlevels: [{name: scan, parameters: {n: {type: integer}}}]")
        >>> tree = s.tree({"n": 3}, [])
        >>> tree["children"][0]["name"], tree["children"][0]["attrs"]
        ('scan', {'n': 3})
        """
        root = tree_node(self.name, "group", {"structure": self.name, "version": self.version})
        parent = root
        for level in self.levels:
            attrs = {p.name: metadata[p.name] for p in level.parameters if p.name in metadata}
            units = {p.name: p.unit for p in level.parameters if p.unit and p.name in attrs}
            node = tree_node(level.name, "group", attrs, units=units or None)
            parent["children"].append(node)
            parent = node
        for channel in channels:
            *groups, name = channel.key.split("/")
            here = parent
            for part in groups:
                found = [c for c in here["children"] if c["name"] == part and c["kind"] == "group"]
                if not found:
                    found = [tree_node(part, "group")]
                    here["children"].append(found[0])
                here = found[0]
            here["children"].append(
                tree_node(
                    name,
                    "channel",
                    channel.attrs,
                    key=channel.key,
                    shape=channel.shape,
                    dtype=channel.dtype,
                )
            )
        return root

    def to_dict(self) -> dict[str, Any]:
        """The structure and its record, as JSON-ready values (``labledger structure show``)."""
        return {
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "levels": [
                {
                    "name": level.name,
                    "description": level.description,
                    "parameters": {p.name: p.to_dict() for p in level.parameters},
                }
                for level in self.levels
            ],
            "always_saved": list(self.always_saved),
            "reason": self.reason,
            "author": self.author,
            "created": self.created.isoformat() if self.created else None,
        }


def incomplete(missing: Sequence[str]) -> str | None:
    """The one-line reason a run missing ``missing`` is incomplete; None if it lacks nothing.

    >>> incomplete(["Coil_I", "Pressure"]), incomplete([])
    ('incomplete: missing Coil_I, Pressure', None)
    """
    return f"incomplete: missing {', '.join(missing)}" if missing else None


@dataclass(frozen=True)
class Against:
    """What an ingest checks its runs against: a structure, the waivers given, and how to
    resolve signal names for a run (number, start) with the configuration in force."""

    structure: Structure
    waivers: dict[str, str]
    resolver: Callable[[int, datetime], Resolve]

    def judge(self, run: RunRecord, channel_keys: Iterable[str]) -> str | None:
        """Mark ``run`` as of the structure, complete or not and why, with the waivers given
        in its metadata; return the reason it is incomplete, if it is."""
        resolve = self.resolver(run.number, run.started)
        why = incomplete(self.structure.missing(channel_keys, resolve, self.waivers))
        run.structure = self.structure.name
        run.complete, run.reason = why is None, why
        if self.waivers:
            run.meta[WAIVED_KEY] = dict(self.waivers)
        else:
            run.meta.pop(WAIVED_KEY, None)
        return why


def load(path: str | os.PathLike[str]) -> Structure:
    """Read a structure description file (see :func:`parse`)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise StructureError(f"{path}: cannot read it ({why})") from None
    return parse(text, path.name)


def parse(text: str, name: str = "<structure>") -> Structure:
    """A structure description from its YAML ``text``; ``name`` is the file to name in
    errors, which say ``file:line: field: reason``."""
    root, data = read(text, name, StructureError)

    def fail(loc: tuple[Any, ...], reason: str) -> StructureError:
        where = ".".join(str(p) for p in loc) or "(top)"
        return StructureError(f"{name}:{line_of(root, loc)}: {where}: {reason}")

    if not isinstance(data, dict):
        raise fail((), "a structure is a mapping of name, description, levels, always_saved")
    _known_keys(data, _TOP_KEYS, (), "a structure", fail)
    title = data.get("name")
    if not isinstance(title, str) or not _NAME.fullmatch(title):
        raise fail(
            ("name",),
            f"{_shown(title)} is not a structure name: 1 to 40 letters, digits, '_', '.' or "
            "'-', starting with a letter or digit (e.g. helicon-shot)",
        )
    levels_data = data.get("levels")
    if not isinstance(levels_data, list) or not levels_data:
        raise fail(("levels",), "give the levels, outermost first: a list of {name, parameters}")
    levels: list[Level] = []
    where: dict[str, str] = {}  # parameter -> its level
    for i, level_data in enumerate(levels_data):
        loc: tuple[Any, ...] = ("levels", i)
        if not isinstance(level_data, dict):
            raise fail(loc, "a level is a mapping of name, description, parameters")
        _known_keys(level_data, _LEVEL_KEYS, loc, "a level", fail)
        level_name = level_data.get("name")
        if not isinstance(level_name, str) or not _LEVEL.fullmatch(level_name):
            raise fail(
                (*loc, "name"),
                f"{_shown(level_name)} is not a level name: letters, digits, '_' and '-', "
                "starting with a letter (e.g. scan)",
            )
        if any(level.name == level_name for level in levels):
            raise fail((*loc, "name"), f"level {level_name!r} is given twice")
        params_data = level_data.get("parameters") or {}
        if not isinstance(params_data, dict):
            raise fail((*loc, "parameters"), "a mapping of parameter name -> {type, ...}")
        params = []
        for pname, spec in params_data.items():
            ploc = (*loc, "parameters", pname)
            if not isinstance(pname, str) or not pname.strip():
                raise fail(ploc, "a parameter's name is the metadata key it is read from")
            if len(pname) > _MAX_KEY or "\x00" in pname or pname.startswith("labledger:"):
                raise fail(ploc, "a metadata key of 1 to 255 characters, not labledger's own")
            if pname in where:
                raise fail(ploc, f"{pname} is also a parameter of level {where[pname]}")
            where[pname] = level_name
            params.append(_parameter(pname, level_name, spec, ploc, fail))
        description = _text(level_data.get("description"), (*loc, "description"), fail)
        levels.append(Level(level_name, tuple(params), description))
    saved = data.get("always_saved") or []
    if not isinstance(saved, list) or not all(isinstance(s, str) and s.strip() for s in saved):
        raise fail(
            ("always_saved",),
            "a list of signal names or channel keys, e.g. [Coil_I, Pressure, 'PXI M6251/ai2']",
        )
    for i, item in enumerate(saved):
        if item in saved[:i]:
            raise fail(("always_saved", i), f"{item!r} is listed twice")
    return Structure(
        name=title,
        levels=tuple(levels),
        always_saved=tuple(saved),
        description=_text(data.get("description"), ("description",), fail),
        text=text,
    )


Fail = Callable[[tuple[Any, ...], str], StructureError]


def _parameter(name: str, level: str, spec: Any, loc: tuple[Any, ...], fail: Fail) -> Parameter:
    if not isinstance(spec, dict):
        raise fail(loc, f"a mapping such as {{type: number, unit: W}}; types: {', '.join(TYPES)}")
    _known_keys(spec, _PARAMETER_KEYS, loc, "a parameter", fail)
    kind = spec.get("type")
    if kind not in TYPES:
        raise fail((*loc, "type"), f"{_shown(kind)} is not a type; give one of {', '.join(TYPES)}")
    numeric = kind in ("number", "integer")
    unit = spec.get("unit")
    if unit is not None and (not isinstance(unit, str) or not unit.strip()):
        raise fail((*loc, "unit"), "a unit is text, e.g. W or Pa*m^3/s")
    if unit is not None and not numeric:
        raise fail((*loc, "unit"), f"a {kind} has no unit; only numbers and whole numbers do")
    required = spec.get("required", True)
    if not isinstance(required, bool):
        raise fail((*loc, "required"), f"{_shown(required)}: give true or false")
    bounds: dict[str, float | None] = {}
    for end in ("min", "max"):
        value = spec.get(end)
        if value is not None and not numeric:
            raise fail((*loc, end), f"a {kind} has no {end}; only numbers and whole numbers do")
        if value is not None and not _of_type(value, "number"):
            raise fail((*loc, end), f"{_shown(value)} is not a number")
        bounds[end] = value
    low, high = bounds["min"], bounds["max"]
    if low is not None and high is not None and low > high:
        raise fail((*loc, "max"), f"max {high} is below min {low}")
    allowed = spec.get("allowed")
    if allowed is not None:
        if low is not None or high is not None:
            raise fail((*loc, "allowed"), "give allowed values or min/max, not both")
        if kind in ("bool", "time"):
            raise fail((*loc, "allowed"), f"a {kind} takes no list of allowed values")
        if not isinstance(allowed, list) or not allowed:
            raise fail((*loc, "allowed"), "a non-empty list of the values it may take")
        for i, value in enumerate(allowed):
            if not _of_type(value, kind):
                raise fail((*loc, "allowed", i), f"{_shown(value)} is not of type {kind}")
        allowed = tuple(allowed)
    description = _text(spec.get("description"), (*loc, "description"), fail)
    return Parameter(name, level, kind, unit, required, allowed, low, high, description)


def _known_keys(
    data: dict[Any, Any], known: tuple[str, ...], loc: tuple[Any, ...], what: str, fail: Fail
) -> None:
    for key in data:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise fail((*loc, key), f"unknown key {key!r}: {hint}{what} takes {', '.join(known)}")


def _text(value: Any, loc: tuple[Any, ...], fail: Fail) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise fail(loc, "a description is text")
    return value


def _of_type(value: Any, kind: str) -> bool:
    """Whether ``value`` is of a parameter type. A whole number may come as a float with no
    fraction (LabVIEW keeps numbers as doubles); a time as a datetime or ISO 8601 text."""
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "text":
        return isinstance(value, str)
    if kind == "time":
        if isinstance(value, date) and not isinstance(value, datetime):
            return True  # YAML reads 2026-11-05 unquoted as a date
        return parse_time(value) is not None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return False
    if not math.isfinite(float(value)):
        return False
    return kind == "number" or float(value).is_integer()


def _same(value: Any, allowed: Any) -> bool:
    """Equal, and of the same kind: ``True`` is not the allowed value 1."""
    return isinstance(value, bool) == isinstance(allowed, bool) and value == allowed


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."


class Structures:
    """An archive's structure descriptions, versioned: adding a structure of a name again
    makes its next version; the old ones stay readable (``structures["helicon-shot@1"]``).

    >>> from labledger.sim import STRUCTURE
    >>> la.structures.add(STRUCTURE, reason="the shots of the 2026 campaign")
    <Structure helicon-shot@1: campaign > shot > acquisition; always saved: Coil_I, ...>
    >>> la.structures["helicon-shot"].version, [s.label for s in la.structures.list()]
    (1, ['helicon-shot@1'])
    """

    def __init__(self, catalog: Catalog):
        self._catalog = catalog

    def __repr__(self) -> str:
        return f"<Structures: {', '.join(s.label for s in self.list()) or 'none'}>"

    def _recorded(self) -> list[dict[str, Any]]:
        found = [
            value
            for key, value in self._catalog.settings().items()
            if key.startswith(SETTING_PREFIX)
        ]
        return sorted(found, key=lambda v: (v["name"], v["version"]))

    def add(self, source: str | os.PathLike[str], *, reason: str) -> Structure:
        """Record a structure description, from a file (a path) or its YAML text (a string of
        several lines), with why; as the next version of its name. The same text as the
        newest version records nothing (``already`` is then true)."""
        why = check_reason(reason, "a structure")
        if isinstance(source, str) and "\n" in source:
            structure = parse(source)
        else:
            if not Path(source).is_file():
                raise NotFound(
                    f"{source}: no such file; give a structure description file (YAML) or its text"
                )
            structure = load(source)
        versions = [v for v in self._recorded() if v["name"] == structure.name]
        if versions and versions[-1]["text"] == structure.text:
            return replace(_from_setting(versions[-1]), already=True)
        version = versions[-1]["version"] + 1 if versions else 1
        value = {
            "name": structure.name,
            "version": version,
            "text": structure.text,
            "reason": why,
            "author": author(),
            "created": datetime.now(UTC).isoformat(),
        }
        self._catalog.add_setting(f"{SETTING_PREFIX}{structure.name}@{version}", value)
        return _from_setting(value)

    def __getitem__(self, ref: str) -> Structure:
        """The newest version of a structure by name, or a version: ``"helicon-shot@1"``."""
        if not isinstance(ref, str):
            raise InvalidArgument(f"structures[{ref!r}]: give a structure's name, e.g. 'shot'")
        name, at, number = ref.partition("@")
        versions = [v for v in self._recorded() if v["name"] == name]
        if not versions:
            known = ", ".join(sorted({v["name"] for v in self._recorded()})) or "none yet"
            raise NotFound(
                f"no structure {name!r} (known: {known}); add it with "
                "`labledger structure add FILE --reason ...`"
            )
        if not at:
            return _from_setting(versions[-1])
        chosen = [v for v in versions if str(v["version"]) == number]
        if not chosen:
            newest = versions[-1]["version"]
            raise NotFound(f"structure {name} has versions 1 to {newest}, not {number!r}")
        return _from_setting(chosen[0])

    def __contains__(self, name: object) -> bool:
        return any(v["name"] == name for v in self._recorded())

    def get(self, name: str) -> Structure | None:
        """The newest version of structure ``name``; None if the archive has none of it."""
        if name not in self:
            return None
        return self[name]

    def list(self, name: str | None = None) -> list[Structure]:
        """The newest version of each structure, by name; with ``name``, its every version."""
        found = [_from_setting(v) for v in self._recorded() if name is None or v["name"] == name]
        if name is not None:
            return found
        newest: dict[str, Structure] = {}
        for structure in found:
            newest[structure.name] = structure
        return list(newest.values())


def _from_setting(value: dict[str, Any]) -> Structure:
    structure = parse(value["text"], f"{value['name']}@{value['version']}")
    return replace(
        structure,
        version=value["version"],
        reason=value["reason"],
        author=value["author"],
        created=datetime.fromisoformat(value["created"]),
    )
