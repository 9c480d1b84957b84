"""Data-quality flags: a subsystem's verdict ("good", "warning", "bad") on whole runs, or on
intervals of runs, with the reason, who said it and when.

Flags are append-only. A correction is a new flag that supersedes the old one; a retraction is
a withdrawal; both keep the old flag readable in the history. A flag is *active* while nothing
has superseded or withdrawn it, and only active flags count: in ``la.runs.search(quality=...)``,
in ``run.flags`` and in good-run lists.

>>> la.flag(runs=[1245, 1255], subsystem="rf", severity="warning", reason="matching drift")
<Flag 3: rf warning on runs 1245, 1255 (matching drift), active>
>>> la.flag(run=1255, start=0.4, stop=0.45, subsystem="probe", severity="bad", reason="arc")
<Flag 4: probe bad on run 1255 from 0.4 to 0.45 s (arc), active>
>>> la.flags.withdraw(1, reason="the outage was on the other testbed")
>>> la.flags[1].status
'withdrawn'
"""

from __future__ import annotations

import builtins  # `list` in class Flags is its method
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from labledger.catalog import MAX_RUN_NUMBER, FlagPeriodRow, FlagRow
from labledger.catalog import quality as records
from labledger.display import html_table
from labledger.errors import Conflict, InvalidArgument, NotFound
from labledger.ids import author, check_reason
from labledger.runs import Run

if TYPE_CHECKING:
    from labledger.catalog import Catalog

SEVERITIES = ("good", "warning", "bad")
ACTIVE, SUPERSEDED, WITHDRAWN = records.ACTIVE, records.SUPERSEDED, records.WITHDRAWN
_SUBSYSTEM = re.compile(r"^[A-Za-z0-9_.\-/]{1,64}$")  # 64: the column's width


@dataclass(frozen=True)
class Period:
    """A run a flag covers: all of it (``start`` and ``stop`` None) or the interval from
    ``start`` to ``stop``, in s on the run's signal time axis (the ``time`` of
    ``run.signal(...)``).

    >>> str(Period(1215, 0.8, 1.2))
    'run 1215 from 0.8 to 1.2 s'
    """

    run: int
    start: float | None = None
    stop: float | None = None

    @property
    def whole(self) -> bool:
        """Whether it covers the whole run."""
        return self.start is None and self.stop is None

    def __str__(self) -> str:
        if self.whole:
            return f"run {self.run}"
        return f"run {self.run} from {self.start:g} to {self.stop:g} s"

    def to_dict(self) -> dict[str, Any]:
        return {"run": self.run, "start": self.start, "stop": self.stop}


@dataclass(frozen=True)
class Flag:
    """One data-quality flag, as recorded: a subsystem's ``severity`` on ``periods`` (whole
    runs or intervals), with ``reason``, ``author`` and ``created`` (UTC). ``supersedes`` is the
    flag it corrected; ``status`` is "active", "superseded" or "withdrawn", and
    ``replaced_by`` the id of the flag or withdrawal that ended it.

    >>> flag = la.flags[1]
    >>> flag.runs, flag.status
    ([1234, 1235], 'active')
    """

    id: int
    subsystem: str
    severity: str
    reason: str
    author: str
    created: datetime
    periods: tuple[Period, ...]
    supersedes: int | None
    status: str
    replaced_by: int | None = None

    @classmethod
    def from_record(cls, record: records.FlagRecord) -> Flag:
        """The flag a catalog record holds."""
        row = record.row
        return cls(
            id=row.id,
            subsystem=row.subsystem or "",
            severity=row.severity or "",
            reason=row.reason,
            author=row.author,
            created=row.created,
            periods=tuple(Period(p.run_number, p.start, p.stop) for p in record.periods),
            supersedes=row.target,
            status=record.status,
            replaced_by=record.replaced_by.id if record.replaced_by is not None else None,
        )

    @property
    def active(self) -> bool:
        """Whether it is in force: neither superseded nor withdrawn."""
        return self.status == ACTIVE

    @property
    def runs(self) -> list[int]:
        """The numbers of the runs it covers (in whole or in part), ascending."""
        return sorted({p.run for p in self.periods})

    @property
    def whole_runs(self) -> bool:
        """Whether it covers whole runs (else intervals of them)."""
        return all(p.whole for p in self.periods)

    def covers(self, run: int) -> bool:
        """Whether it covers run number ``run``, in whole or in part."""
        return any(p.run == run for p in self.periods)

    @property
    def where(self) -> str:
        """Its runs and intervals in words: ``runs 1200-1209``, ``run 1215 from 0.8 to 1.2 s``."""
        windows = {(p.start, p.stop) for p in self.periods}
        runs = describe_runs(self.runs)
        if len(windows) == 1:
            start, stop = next(iter(windows))
            return runs if start is None else f"{runs} from {start:g} to {stop:g} s"
        return "; ".join(str(p) for p in self.periods)

    def __repr__(self) -> str:
        return (
            f"<Flag {self.id}: {self.subsystem} {self.severity} on {self.where} "
            f"({self.reason}), {self.status}>"
        )

    COLUMNS = ("flag", "status", "subsystem", "severity", "covers", "author", "recorded (UTC)",
               "reason")  # fmt: skip

    def row(self) -> tuple[str, ...]:
        """Its facts in the order of :attr:`COLUMNS`, as tables show them."""
        status = self.status
        if self.replaced_by is not None and self.status == SUPERSEDED:
            status += f" by {self.replaced_by}"
        reason = self.reason + (f" (corrects {self.supersedes})" if self.supersedes else "")
        return (str(self.id), status, self.subsystem, self.severity, self.where, self.author,
                f"{self.created:%Y-%m-%d %H:%M:%S}", reason)  # fmt: skip

    def _repr_html_(self) -> str:
        return flags_html([self])

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Flag:
        """The flag :meth:`to_dict` gave (as a server sends it)."""
        return cls(
            id=data["id"], subsystem=data["subsystem"], severity=data["severity"],
            reason=data["reason"], author=data["author"],
            created=datetime.fromisoformat(data["created"]),
            periods=tuple(Period(p["run"], p["start"], p["stop"]) for p in data["periods"]),
            supersedes=data["supersedes"], status=data["status"],
            replaced_by=data["replaced_by"],
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "subsystem": self.subsystem,
            "severity": self.severity,
            "reason": self.reason,
            "author": self.author,
            "created": self.created.isoformat(),
            "periods": [p.to_dict() for p in self.periods],
            "runs": self.runs,
            "supersedes": self.supersedes,
            "status": self.status,
            "replaced_by": self.replaced_by,
        }


class Flags:
    """An archive's data-quality flags: :meth:`add`, :meth:`withdraw`, :meth:`list`,
    :meth:`active`, ``flags[id]``, and :attr:`version`.

    >>> la.flags.add(runs=[1245, 1255], subsystem="rf", severity="warning",
    ...              reason="matching drift")
    <Flag 3: rf warning on runs 1245, 1255 (matching drift), active>
    >>> la.flags.active([1255])
    {1255: [<Flag 3: rf warning on runs 1245, 1255 (matching drift), active>]}
    """

    def __init__(self, catalog: Catalog, *, by: str | None = None):
        self._catalog = catalog
        self._by = by  # who flags: a server's caller; else this process's user@host

    def __repr__(self) -> str:
        return f"<Flags: {self.version} rows in {self._catalog.display_url}>"

    def _repr_html_(self) -> str:
        return flags_html(self.list(), title="active flags")

    @property
    def version(self) -> int:
        """How many rows the flags log holds (flags and withdrawals): it grows with every
        change, so a result made at one version and read at another may be stale."""
        return records.flags_seen(self._catalog)

    def add(
        self,
        *,
        runs: Any = None,
        run: Any = None,
        start: float | None = None,
        stop: float | None = None,
        subsystem: str | None = None,
        severity: str | None = None,
        reason: str | None = None,
        supersedes: int | None = None,
    ) -> Flag:
        """Flag ``runs`` (numbers, :class:`Run` objects, ranges) or one ``run``: whole, or from
        ``start`` to ``stop`` s on each run's time axis. ``supersedes`` corrects an active
        flag: the new flag is what is given (its runs default to the old flag's), and the old
        one stays in the history, superseded.

        ``subsystem``, ``severity`` and ``reason`` are required (refused with an
        :class:`InvalidArgument` that says so when missing). Everything is checked before
        anything is written: unknown runs, an empty interval, no reason, an unknown severity
        are refused, with the catalog unchanged.

        >>> la.flags.add(run=1255, start=0.4, stop=0.45, subsystem="probe", severity="bad",
        ...              reason="arc")
        <Flag 3: probe bad on run 1255 from 0.4 to 0.45 s (arc), active>
        """
        subsystem = check_subsystem(subsystem)
        if severity not in SEVERITIES:
            said = "a flag needs a severity" if severity is None else f"severity={severity!r}"
            raise InvalidArgument(f"{said}: a flag's severity is one of {', '.join(SEVERITIES)}")
        reason = check_reason(reason, "a flag")
        window = _window(start, stop)
        if runs is not None and run is not None:
            raise InvalidArgument("give run=N for one run or runs=[...] for several, not both")
        old: Flag | None = None
        if supersedes is not None:
            old = self[_flag_id(supersedes, "supersedes")]
            if not old.active:
                raise Conflict(_not_active(old, "supersede"))
        if runs is None and run is None:
            if old is None:
                raise InvalidArgument(
                    "say which runs the flag is on: run=1215, or runs=range(1200, 1210)"
                )
            # a correction that does not name runs keeps the old flag's runs (and intervals,
            # unless it gives its own)
            given = old.periods if window is None else tuple(
                Period(n, *window) for n in old.runs
            )  # fmt: skip
            numbers = [p.run for p in given]
            refs: dict[int, str | None] = {}
        else:
            refs = run_refs(
                runs if runs is not None else run, "runs" if runs is not None else "run"
            )
            numbers = list(refs)
            given = tuple(Period(n, *(window or (None, None))) for n in numbers)
        ids = self._existing(numbers, refs)
        row = FlagRow(
            action=records.FLAG,
            target=old.id if old is not None else None,
            subsystem=subsystem,
            severity=severity,
            reason=reason,
            author=self._by or author(),
            created=datetime.now(UTC),
        )
        periods = [
            FlagPeriodRow(run_id=ids[p.run], run_number=p.run, start=p.start, stop=p.stop)
            for p in given
        ]
        return Flag.from_record(records.append_flag(self._catalog, row, periods))

    def withdraw(self, flag_id: int, *, reason: str) -> None:
        """Withdraw the active flag ``flag_id``: it no longer counts, and stays in the history
        with the withdrawal's reason.

        >>> la.flags.withdraw(1, reason="the outage was on the other testbed")
        >>> la.flags[1]
        <Flag 1: power bad on runs 1234-1235 (outage), withdrawn>
        """
        flag_id = _flag_id(flag_id, "flag_id")
        reason = check_reason(reason, "a withdrawal")
        row = FlagRow(
            action=records.WITHDRAW,
            target=flag_id,
            subsystem=None,
            severity=None,
            reason=reason,
            author=self._by or author(),
            created=datetime.now(UTC),
        )
        records.append_withdrawal(self._catalog, row)

    def list(
        self, *, run: Any = None, subsystem: str | None = None, include_inactive: bool = False
    ) -> list[Flag]:
        """The active flags, oldest first; on ``run`` (a number or a :class:`Run`) or of
        ``subsystem`` only; ``include_inactive`` adds the superseded and withdrawn ones, so the
        whole history shows.

        >>> la.flags.withdraw(1, reason="the outage was on the other testbed")
        >>> la.flags.list(run=1234)
        []
        >>> la.flags.list(run=1234, include_inactive=True)
        [<Flag 1: power bad on runs 1234-1235 (outage), withdrawn>]
        """
        numbers = None
        if run is not None:
            refs = run_refs(run, "run")
            if len(refs) != 1:
                raise InvalidArgument("list(run=...) takes one run; use active() for several")
            numbers = list(refs)
            self._existing(numbers, refs)
        found = records.flags(
            self._catalog,
            run_numbers=numbers,
            subsystems=None if subsystem is None else [subsystem],
            active_only=not include_inactive,
        )
        return [Flag.from_record(r) for r in found]

    def active(self, run_numbers: Any) -> dict[int, builtins.list[Flag]]:
        """The active flags on each of ``run_numbers`` (numbers, runs or ranges), asked of the
        catalog in one query: every run given is a key, with an empty list if nothing flags
        it.

        >>> la.flags.active(range(1244, 1246))
        {1244: [], 1245: [<Flag 2: probe bad on run 1245 from 0.2 to 0.3 s (arc), active>]}
        """
        numbers = list(run_refs(run_numbers, "run_numbers", allow_empty=True))
        found: dict[int, builtins.list[Flag]] = {n: [] for n in numbers}
        if not numbers:
            return found
        for record in records.flags(self._catalog, run_numbers=numbers, active_only=True):
            flag = Flag.from_record(record)
            for number in flag.runs:
                if number in found:
                    found[number].append(flag)
        return found

    def __getitem__(self, flag_id: int) -> Flag:
        flag_id = _flag_id(flag_id, "flag id")
        found = records.flags(self._catalog, ids=[flag_id])
        if not found:
            row = records.flag_row(self._catalog, flag_id)
            what = f"row {flag_id} is the withdrawal of flag {row.target}" if row else ""
            raise NotFound(
                f"there is no flag {flag_id}{f' ({what})' if what else ''}; list them with "
                "`labledger flag list --all`"
            )
        return Flag.from_record(found[0])

    def _existing(self, numbers: builtins.list[int], refs: dict[int, str | None]) -> dict[int, str]:
        """The run ids of ``numbers``, all of which must exist (and be the runs given)."""
        ids = records.run_ids(self._catalog, numbers)
        missing = [n for n in numbers if n not in ids]
        if missing:
            more = f" (nor do {len(missing) - 1} more of the {len(numbers)} given)"
            raise NotFound(
                f"run {missing[0]} does not exist{more if len(missing) > 1 else ''}; nothing "
                "was flagged (list the runs with `labledger runs`)"
            )
        for number, run_id in refs.items():
            if run_id is not None and ids[number] != run_id:
                raise InvalidArgument(
                    f"run {number} given is not this archive's run {number} (another archive's?)"
                )
        return ids


def flags_html(flags: Sequence[Flag], title: str | None = None) -> str:
    """Flags as an HTML table, for Jupyter."""
    return html_table([f.row() for f in flags], header=Flag.COLUMNS, title=title)


def run_refs(value: Any, name: str, *, allow_empty: bool = False) -> dict[int, str | None]:
    """Run numbers from what a user gave (a number, a :class:`Run`, a range, or an iterable of
    numbers and runs), ascending and without repeats, each with the run's id when a Run was
    given (to check it is this archive's)."""
    items = [value] if isinstance(value, (int, np.integer, Run)) else value
    if isinstance(items, (str, bytes)) or not isinstance(items, Iterable):
        raise InvalidArgument(
            f"{name}={value!r}: give run numbers or runs, e.g. {name}=1215, "
            f"{name}=range(1200, 1210) or {name}=[1200, 1203]"
        )
    refs: dict[int, str | None] = {}
    for item in items:
        if isinstance(item, Run):
            refs[item.number] = item.id
            continue
        if isinstance(item, bool) or not isinstance(item, (int, np.integer)):
            raise InvalidArgument(
                f"{name}: {item!r} is not a run number (give numbers or Run objects)"
            )
        number = int(item)
        if not 0 <= number <= MAX_RUN_NUMBER:
            raise InvalidArgument(f"{name}: {number} is not a run number (0 to {MAX_RUN_NUMBER})")
        refs.setdefault(number, None)
    if not refs and not allow_empty:
        raise InvalidArgument(f"{name} names no run; nothing was flagged")
    return dict(sorted(refs.items()))


def check_subsystem(subsystem: Any) -> str:
    """A subsystem's name as given, if it is one: letters, digits and ``_ - . /``."""
    if not isinstance(subsystem, str) or not _SUBSYSTEM.fullmatch(subsystem):
        given = "say whose verdict it is" if subsystem is None else f"subsystem={subsystem!r}"
        raise InvalidArgument(
            f"{given}: a subsystem is named with letters, digits and _ - . / (at most 64), "
            "e.g. subsystem='power' or 'probe'"
        )
    return subsystem


def describe_runs(numbers: Iterable[int]) -> str:
    """Run numbers in few words: consecutive ones as a span.

    >>> describe_runs([1200, 1201, 1202, 1205])
    'runs 1200-1202, 1205'
    >>> describe_runs([1215])
    'run 1215'
    """
    ordered = sorted(set(numbers))
    spans: list[str] = []
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        spans.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ("run " if len(ordered) == 1 else "runs ") + ", ".join(spans)


def _window(start: Any, stop: Any) -> tuple[float, float] | None:
    if start is None and stop is None:
        return None
    if start is None or stop is None:
        raise InvalidArgument(
            "give both start and stop (s on the run's time axis) to flag an interval, or "
            "neither to flag whole runs"
        )
    values = []
    for name, value in (("start", start), ("stop", stop)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise InvalidArgument(f"{name}={value!r}: a time in s, e.g. {name}=0.8")
        if not math.isfinite(value):
            raise InvalidArgument(f"{name}={value!r}: a time must be a finite number of s")
        values.append(float(value))
    if values[1] <= values[0]:
        raise InvalidArgument(
            f"stop={values[1]:g} is not after start={values[0]:g}: an interval flag covers "
            "from start to a later stop (s on the run's time axis)"
        )
    return values[0], values[1]


def _flag_id(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InvalidArgument(f"{name}={value!r}: a flag is named by its id, a positive number")
    return int(value)


def _not_active(flag: Flag, verb: str) -> str:
    if flag.status == SUPERSEDED:
        return (
            f"cannot {verb} flag {flag.id}: it is superseded by flag {flag.replaced_by}; "
            f"{verb} that one instead"
        )
    return f"cannot {verb} flag {flag.id}: it is {flag.status}"
