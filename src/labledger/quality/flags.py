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

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from labledger.display import html_table
from labledger.errors import InvalidArgument
from labledger.records import ACTIVE, MAX_RUN_NUMBER, SUPERSEDED, FlagEntry
from labledger.runs import Run

if TYPE_CHECKING:
    pass

SEVERITIES = ("good", "warning", "bad")
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
    def from_record(cls, record: FlagEntry) -> Flag:
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

    COLUMNS = (
        "flag",
        "status",
        "subsystem",
        "severity",
        "covers",
        "author",
        "recorded (UTC)",
        "reason",
    )

    def row(self) -> tuple[str, ...]:
        """Its facts in the order of :attr:`COLUMNS`, as tables show them."""
        status = self.status
        if self.replaced_by is not None and self.status == SUPERSEDED:
            status += f" by {self.replaced_by}"
        reason = self.reason + (f" (corrects {self.supersedes})" if self.supersedes else "")
        return (
            str(self.id),
            status,
            self.subsystem,
            self.severity,
            self.where,
            self.author,
            f"{self.created:%Y-%m-%d %H:%M:%S}",
            reason,
        )

    def _repr_html_(self) -> str:
        return flags_html([self])

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Flag:
        """The flag :meth:`to_dict` gave (as a server sends it)."""
        return cls(
            id=data["id"],
            subsystem=data["subsystem"],
            severity=data["severity"],
            reason=data["reason"],
            author=data["author"],
            created=datetime.fromisoformat(data["created"]),
            periods=tuple(Period(p["run"], p["start"], p["stop"]) for p in data["periods"]),
            supersedes=data["supersedes"],
            status=data["status"],
            replaced_by=data["replaced_by"],
        )

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
