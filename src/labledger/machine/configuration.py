"""The configuration history: which testbed description and which wiring were in force for a run.

The history is a log. A ``description`` entry loads a whole testbed description (with its own
wiring, possibly in periods); a ``wiring`` entry moves signals to other ports. Each entry is in
force from a run number or a time, and carries its author, reason and timestamp; its id is the
configuration version. For a run, the newest description in force applies, then the wiring
entries recorded after it that are in force, in the order they were recorded.

A run is stamped at ingest with the newest version of the log, and only entries up to its stamp
apply to it: a later change, even one dated back, never alters an ingested run by accident.

>>> la.config.at(run=1234).wiring["Langmuir_I"]
'PXI M6251/ai3'
>>> print(la.config.diff(1234, 1245))
run 1234 (version 1) -> run 1245 (version 2)
  wiring Langmuir_I: PXI M6251/ai3 -> PXI M6251/ai11
  version 2, from run 1240: Langmuir_I -> PXI M6251/ai11 (...: ai3 input stage noisy: ...)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from labledger.display import html_table
from labledger.errors import InvalidArgument, NotFound
from labledger.ids import author
from labledger.machine.calibration import Calibration, in_force
from labledger.machine.description import (
    Description,
    DescriptionError,
    check_port,
    load,
    parsed,
)
from labledger.machine.logs import Logs, Snapshot
from labledger.machine.validity import after, covers, since, start_of, validity
from labledger.records import MAX_RUN_NUMBER, ConfigChangeRecord
from labledger.runs import Run, Runs
from labledger.structures import Resolve


@dataclass(frozen=True)
class Change:
    """One entry of the configuration log."""

    version: int
    kind: str  # "description" or "wiring"
    from_run: int | None
    from_time: datetime | None
    author: str
    reason: str
    created: datetime
    payload: dict[str, Any] = field(repr=False)

    @classmethod
    def from_row(cls, row: ConfigChangeRecord) -> Change:
        """The entry a catalog row records."""
        return cls(
            row.id,
            row.kind,
            row.from_run,
            row.from_time,
            row.author,
            row.reason,
            row.created,
            row.payload,
        )

    @property
    def valid_from(self) -> str:
        """From when it is in force, in words."""
        return since(self.from_run, self.from_time)

    @property
    def summary(self) -> str:
        """What it changed, in a few words."""
        if self.kind == "description":
            return f"description {self.payload['file']} ({self.payload['description']['name']})"
        moves = self.payload["wiring"]
        return ", ".join(f"{s} -> {p or 'unwired'}" for s, p in moves.items())

    def __str__(self) -> str:
        what = f"version {self.version}, {self.valid_from}: {self.summary}"
        return f"{what} ({self.author}: {self.reason})"

    def __repr__(self) -> str:
        return f"<Change {self}>"

    COLUMNS = ("version", "in force", "change", "by", "reason", "made (UTC)")

    def row(self) -> tuple[Any, ...]:
        """Its facts in the order of :attr:`COLUMNS`, as tables show them."""
        return (
            self.version,
            self.valid_from,
            self.summary,
            self.author,
            self.reason,
            f"{self.created:%Y-%m-%d %H:%M:%S}",
        )

    def _repr_html_(self) -> str:
        return changes_html([self])

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "kind": self.kind,
            "from_run": self.from_run,
            "from_time": self.from_time.isoformat() if self.from_time else None,
            "author": self.author,
            "reason": self.reason,
            "created": self.created.isoformat(),
            "summary": self.summary,
        }


@dataclass(frozen=True)
class Configuration:
    """The testbed as it was for one run: its description and where each signal was wired."""

    run: int
    version: int  # the newest log entry that shaped it
    description: Description
    wiring: dict[str, str]  # signal -> "device/port"
    changes: tuple[Change, ...]
    # the view of the logs it was resolved from: the calibrations in force come from the same
    snapshot: Snapshot = field(default_factory=Snapshot, compare=False, repr=False)

    def channel(self, signal: str) -> str | None:
        """The run's channel key the signal was wired to, or None if it was not wired."""
        port = self.wiring.get(signal)
        return None if port is None else self.description.channel(port)

    def __repr__(self) -> str:
        return (
            f"<Configuration of run {self.run}: version {self.version}, description "
            f"{self.description.name!r}, {len(self.wiring)} of {len(self.description.signals)} "
            "signals wired>"
        )

    def _repr_html_(self) -> str:
        signals = [
            (name, spec.unit, spec.calibration, self.wiring.get(name), self.channel(name))
            for name, spec in sorted(self.description.signals.items())
        ]
        title = (
            f"configuration of run {self.run}: version {self.version}, description "
            f"{self.description.name}"
        )
        header = ["signal", "unit", "calibration", "port", "channel"]
        return html_table(signals, header=header, title=title) + changes_html(self.changes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "run": self.run,
            "version": self.version,
            "description": self.description.model_dump(mode="json", by_alias=True),
            "wiring": dict(sorted(self.wiring.items())),
            "changes": [c.to_dict() for c in self.changes],
        }


@dataclass(frozen=True)
class Difference:
    """One thing that differs between two configurations."""

    what: str  # "wiring", "signal", "device", "component", "property", "calibration"
    name: str
    before: Any
    after: Any

    def __str__(self) -> str:
        return f"{self.what} {self.name}: {_show(self.before)} -> {_show(self.after)}"

    def __repr__(self) -> str:
        return f"<Difference {self}>"


@dataclass(frozen=True)
class Diff:
    """What changed between the configurations of two runs, and the log entries between; and
    the calibrations in force for them that differ (``what`` "calibration", by the name the
    signals give it), with those versions in :attr:`calibrations`."""

    a: Configuration
    b: Configuration
    differences: tuple[Difference, ...]
    changes: tuple[Change, ...]
    calibrations: tuple[Calibration, ...] = ()  # the versions named by calibration differences

    def __bool__(self) -> bool:
        return bool(self.differences)

    def __repr__(self) -> str:
        return (
            f"<Diff run {self.a.run} (version {self.a.version}) -> run {self.b.run} "
            f"(version {self.b.version}): {len(self.differences)} differences>"
        )

    def _repr_html_(self) -> str:
        rows = [(d.what, d.name, _show(d.before), _show(d.after)) for d in self.differences]
        title = (
            f"run {self.a.run} (version {self.a.version}) -> run {self.b.run} "
            f"(version {self.b.version})"
        )
        header = ["what", "name", "before", "after"]
        return html_table(rows, header=header, title=title) + changes_html(self.changes)

    def __str__(self) -> str:
        a, b = self.a, self.b
        lines = [f"run {a.run} (version {a.version}) -> run {b.run} (version {b.version})"] + [
            f"  {d}" for d in self.differences
        ]
        if not self.differences:
            lines.append("  no differences")
        lines += [f"  {c}" for c in self.changes]
        for cal in self.calibrations:
            params = ", ".join(f"{k}={v}" for k, v in cal.params.items())
            lines.append(
                f"  calibration {cal.label}, {cal.valid_from}: {cal.kind} {params} -> {cal.unit} "
                f"({cal.author}: {cal.reason})"
            )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "a": {"run": self.a.run, "version": self.a.version},
            "b": {"run": self.b.run, "version": self.b.version},
            "differences": [
                {"what": d.what, "name": d.name, "before": d.before, "after": d.after}
                for d in self.differences
            ],
            "changes": [c.to_dict() for c in self.changes],
            "calibrations": [c.to_dict() for c in self.calibrations],
        }


def changes_html(changes: Sequence[Change], title: str = "configuration log") -> str:
    """Entries of the configuration log as an HTML table, for Jupyter."""
    return html_table([c.row() for c in changes], header=Change.COLUMNS, title=title)


def resolve(snapshot: Snapshot, number: int, started: datetime, stamp: int | None) -> Configuration:
    """The configuration for run ``number`` (begun at ``started``, stamped ``stamp``)."""
    key = ("configuration", number, started, stamp)
    if key in snapshot.derived:
        return snapshot.derived[key]
    entries = [
        row
        for row in snapshot.changes
        if (stamp is None or row.id <= stamp)
        and after(start_of(row.from_run, row.from_time), number, started)
    ]
    base = [row for row in entries if row.kind == "description"]
    if not base:
        if not snapshot.changes:
            raise NotFound(
                "the archive has no testbed description yet; load one with "
                "`labledger config load FILE.yaml`"
            )
        raise NotFound(f"no testbed description was in force for run {number}")
    first = base[-1]
    description = parsed(snapshot, first)
    wiring = {
        signal: period.port
        for signal in description.wiring
        for period in description.periods(signal)
        if covers(period.start, period.until, number, started)
    }
    used = [first]
    for row in entries:
        if row.kind == "wiring" and row.id > first.id:
            for signal, port in row.payload["wiring"].items():
                if port is None:
                    wiring.pop(signal, None)
                else:
                    wiring[signal] = port
            used.append(row)
    config = Configuration(
        number, used[-1].id, description, wiring, tuple(Change.from_row(r) for r in used), snapshot
    )
    snapshot.derived[key] = config
    return config


def _trial(
    snapshot: Snapshot, wiring: dict[str, str | None], start_run: int | None, start_time: Any
) -> ConfigChangeRecord:
    """A wiring entry as it would be appended, to check what it would make of the history."""
    newest = snapshot.changes[-1].id if snapshot.changes else 0
    trial = ConfigChangeRecord(
        kind="wiring",
        payload={"wiring": wiring},
        from_run=start_run,
        from_time=start_time,
        author="",
        reason="",
        created=datetime.now(UTC),
    )
    trial.id = newest + 1
    return trial


def latest(snapshot: Snapshot) -> Description | None:
    """The newest description recorded, whatever its validity: what new changes are checked
    against."""
    rows = [r for r in snapshot.changes if r.kind == "description"]
    return parsed(snapshot, rows[-1]) if rows else None


class ConfigHistory:
    """An archive's configuration history: ``at``, ``diff``, ``log``, ``load``, ``wire``."""

    def __init__(self, logs: Logs, runs: Runs):
        self._logs = logs
        self._runs = runs

    def __repr__(self) -> str:
        return f"<ConfigHistory: {len(self._logs.current().changes)} versions>"

    def _repr_html_(self) -> str:
        return changes_html(self.log())

    def at(self, run: int | str | Run) -> Configuration:
        """The configuration of a run (a number, an id or a Run), as it was stamped at ingest."""
        found = self._run(run)
        return resolve(self._logs.current(), found.number, found.started, found._row.config_version)

    def diff(self, a: int | str | Run, b: int | str | Run) -> Diff:
        """What differs between the configurations of runs ``a`` and ``b``, with the log
        entries that made the difference; and the calibrations in force for them that differ,
        with those versions.

        >>> print(la.config.diff(1245, 1255))
        run 1245 (version 2) -> run 1255 (version 2)
          calibration langmuir_i: langmuir_i@1 -> langmuir_i@2
          calibration langmuir_i@1, always: linear gain=-0.02, offset=0.0 -> A (...)
          calibration langmuir_i@2, from run 1250: linear gain=-0.01, offset=0.0 -> A (...)
        """
        ra, rb = self._run(a), self._run(b)
        ca, cb = self.at(ra), self.at(rb)
        low, high = sorted((ca.version, cb.version))
        between = tuple(c for c in self.log() if low < c.version <= high)
        moved, versions = calibration_differences(
            self._logs.current(), ca, ra.started, cb, rb.started
        )
        return Diff(ca, cb, tuple(differences(ca, cb) + moved), between, tuple(versions))

    def log(self) -> list[Change]:
        """Every entry, oldest first."""
        return [Change.from_row(r) for r in self._logs.current().changes]

    def load(
        self,
        path: str | Path,
        *,
        reason: str,
        from_run: int | None = None,
        from_time: str | datetime | None = None,
    ) -> Change:
        """Record a testbed description (a YAML file) in force from a run or a time."""
        description, _ = load(path)
        payload = {
            "file": Path(path).name,
            "description": description.model_dump(mode="json", by_alias=True),
        }
        return self._append("description", payload, reason, from_run, from_time)

    def wire(
        self,
        wiring: dict[str, str | None],
        *,
        reason: str,
        from_run: int | None = None,
        from_time: str | datetime | None = None,
    ) -> Change:
        """Move signals to other ports ("device/port"; None unwires), from a run or a time.
        Refused, with nothing recorded, for an unknown signal, device or port, or a port that
        would carry two signals."""
        snapshot = self._logs.current()
        if latest(snapshot) is None:
            raise NotFound("load a testbed description before wiring signals")
        if not wiring:
            raise InvalidArgument("a wiring change names at least one signal and its port")
        for signal, port in wiring.items():
            if not isinstance(signal, str) or not (port is None or isinstance(port, str)):
                raise InvalidArgument(
                    f"wiring {signal!r}: {port!r}: give signal names and 'device/port' text "
                    "(None unwires)"
                )
        start_run, start_time = validity(from_run, from_time)
        trial = Snapshot(
            snapshot.version, [*snapshot.changes, _trial(snapshot, wiring, start_run, start_time)]
        )
        # check the change wherever the configuration it lands in may differ: at its start,
        # and at every later start of another entry or of a description's wiring period
        for i, (number, started) in enumerate(self._boundaries(snapshot, start_run, start_time)):
            config = resolve(trial, number, started, None)
            where = f"run {number}" if start_time is None else started.isoformat()
            d = config.description
            for signal, port in wiring.items():
                if i == 0 and signal not in d.signals:
                    raise DescriptionError(
                        f"wiring: signal {signal!r} is not among the described signals"
                    )
                why = port is not None and check_port(d, port)
                if why:
                    raise DescriptionError(f"wiring {signal} -> {port}: {why}, for {where}")
            by_port: dict[str, str] = {}
            for signal, port in sorted(config.wiring.items(), key=lambda sp: sp[0] not in wiring):
                if port in by_port:
                    raise DescriptionError(
                        f"wiring {by_port[port]} -> {port}: from {where} {port} would carry both "
                        f"{by_port[port]} and {signal}; move or unwire {signal} in the same change"
                    )
                by_port[port] = signal
        return self._append("wiring", {"wiring": wiring}, reason, from_run, from_time)

    def _append(
        self, kind: str, payload: dict[str, Any], reason: str, from_run: Any, from_time: Any
    ) -> Change:
        if not reason or not reason.strip():
            raise InvalidArgument("say why: a configuration change needs a reason")
        start_run, start_time = validity(from_run, from_time)
        snapshot = self._logs.current()
        row = ConfigChangeRecord(
            kind=kind,
            payload=payload,
            from_run=start_run,
            from_time=start_time,
            author=author(),
            reason=reason.strip(),
            created=datetime.now(UTC),
        )
        catalog = self._runs.home.catalog
        newest = snapshot.changes[-1].id if snapshot.changes else 0
        return Change.from_row(catalog.append_config_change(row, expected=newest))

    def _boundaries(
        self, snapshot: Snapshot, start_run: int | None, start_time: datetime | None
    ) -> list[tuple[int, datetime]]:
        """``(number, started)`` of the runs where the configuration may change, from a start
        on: the start, and each later start or end of an entry or a wiring period of its kind."""
        first_run = start_run or 0
        points: set[int | datetime | None] = {start_time if start_time is not None else first_run}
        for row in snapshot.changes:
            points.add(row.from_time if start_time is not None else row.from_run)
            if row.kind == "description":
                d = parsed(snapshot, row)
                points.update(p.start for s in d.wiring for p in d.periods(s))
                points.update(p.until for s in d.wiring for p in d.periods(s))
        # a start by time counts the points in time, a start by run the run numbers
        if start_time is not None:
            times = sorted(p for p in points if isinstance(p, datetime) and p >= start_time)
            return [(MAX_RUN_NUMBER, t) for t in times]
        numbers = sorted(p for p in points if isinstance(p, int) and p >= first_run)
        return [(n, self._started(n)) for n in numbers]

    def _run(self, run: int | str | Run) -> Run:
        return run if isinstance(run, Run) else self._runs[run]

    def _started(self, number: int | None) -> datetime:
        """When run ``number`` began, if it exists; else now, which every recorded run precedes."""
        if number is not None and number in self._runs:
            return self._runs[number].started
        return datetime.now(UTC)


def differences(a: Configuration, b: Configuration) -> list[Difference]:
    """Wiring moves, and signals, devices, components and properties added, removed or changed."""
    found = [
        Difference("wiring", s, a.wiring.get(s), b.wiring.get(s))
        for s in sorted(set(a.wiring) | set(b.wiring))
        if a.wiring.get(s) != b.wiring.get(s)
    ]
    da, db = a.description, b.description
    for what, left, right in (
        ("signal", da.signals, db.signals),
        ("device", da.devices, db.devices),
    ):
        for name in sorted(set(left) | set(right)):
            x, y = left.get(name), right.get(name)
            if x != y:
                found.append(Difference(what, name, _dump(x), _dump(y)))
    parts_a, parts_b = dict(da.walk()), dict(db.walk())
    for path in sorted(set(parts_a) | set(parts_b)):
        pa, pb = parts_a.get(path), parts_b.get(path)
        if pa is None or pb is None:
            found.append(Difference("component", path, _dump(pa), _dump(pb)))
            continue
        for key in sorted(set(pa.properties) | set(pb.properties)):
            if pa.properties.get(key) != pb.properties.get(key):
                found.append(
                    Difference(
                        "property", f"{path}.{key}", pa.properties.get(key), pb.properties.get(key)
                    )
                )
        if pa.signals != pb.signals or pa.model != pb.model:
            found.append(
                Difference(
                    "component",
                    path,
                    {"model": pa.model, "signals": pa.signals},
                    {"model": pb.model, "signals": pb.signals},
                )
            )
    return found


def calibration_differences(
    snapshot: Snapshot, a: Configuration, a_started: datetime, b: Configuration, b_started: datetime
) -> tuple[list[Difference], list[Calibration]]:
    """The calibrations in force for runs ``a`` and ``b`` (begun at those times) that differ,
    of every calibration a signal of either run's description names: a difference each (the
    versions' labels, None where none is in force), and the versions involved, by name and
    version. In force as a signal is read: the newest version begun by the run."""
    names = {
        spec.calibration
        for config in (a, b)
        for spec in config.description.signals.values()
        if spec.calibration
    }
    found, versions = [], {}
    for name in sorted(names):
        before = in_force(snapshot, name, a.run, a_started)
        after = in_force(snapshot, name, b.run, b_started)
        labels = (before.label if before else None, after.label if after else None)
        if labels[0] != labels[1]:
            found.append(Difference("calibration", name, *labels))
            versions.update({c.label: c for c in (before, after) if c is not None})
    return found, sorted(versions.values(), key=lambda c: (c.name, c.version))


def _dump(value: Any) -> Any:
    if value is None:
        return None
    return value.model_dump(mode="json", by_alias=True, exclude={"components"})


def _show(value: Any) -> str:
    return "(none)" if value is None else str(value)


def wiring_resolver(logs: Logs) -> Callable[[int, datetime], Resolve]:
    """Signal names to channel keys for a run (number, start) as the configuration in force
    will have it once the run is recorded (the whole log: a run is stamped with its newest
    version); without a testbed description, no signal is wired. What a structure's
    always-saved names are checked with, at ingest and when a live run is saved."""

    def resolver(number: int, started: datetime) -> Resolve:
        try:
            config = resolve(logs.current(), number, started, None)
        except NotFound:
            return lambda name: None
        return config.channel

    return resolver
