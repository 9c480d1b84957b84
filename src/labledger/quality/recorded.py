"""Flags and good-run lists as the catalog records them: an archive's flags (:class:`Flags`:
add, withdraw, list, ask) and its good-run lists (:class:`GoodRunLists`: made, versioned, read).
The values they give (:class:`labledger.quality.flags.Flag`,
:class:`labledger.quality.goodruns.GoodRunList`) need no catalog, and travel from a server.
"""

from __future__ import annotations

import builtins  # `list` in class Flags is its method
import math
import re
import warnings
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from labledger.catalog import quality as records
from labledger.errors import Conflict, DataWarning, InvalidArgument, NotFound
from labledger.ids import author, check_reason
from labledger.quality.flags import (
    SEVERITIES,
    Flag,
    Period,
    check_subsystem,
    flags_html,
    run_refs,
)
from labledger.quality.goodruns import (
    GoodRunList,
    canonical_query,
    content_hash,
    evaluate,
    search_arguments,
)
from labledger.records import (
    SUPERSEDED,
    FlagEntry,
    FlagPeriodRecord,
    FlagRecord,
    GoodRunListRecord,
)

if TYPE_CHECKING:
    from labledger.catalog import Catalog
    from labledger.catalog.database import Sessions
    from labledger.runs import Runs

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}$")  # 128: the column's width


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
            given = old.periods if window is None else tuple(Period(n, *window) for n in old.runs)
            numbers = [p.run for p in given]
            refs: dict[int, str | None] = {}
        else:
            refs = run_refs(
                runs if runs is not None else run, "runs" if runs is not None else "run"
            )
            numbers = list(refs)
            given = tuple(Period(n, *(window or (None, None))) for n in numbers)
        ids = self._existing(numbers, refs)
        row = FlagRecord(
            action=records.FLAG,
            target=old.id if old is not None else None,
            subsystem=subsystem,
            severity=severity,
            reason=reason,
            author=self._by or author(),
            created=datetime.now(UTC),
        )
        periods = [
            FlagPeriodRecord(run_id=ids[p.run], run_number=p.run, start=p.start, stop=p.stop)
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
        row = FlagRecord(
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


class GoodRunLists:
    """An archive's good-run lists: call it to read or make one (what ``la.good_runs`` does),
    :meth:`versions` for what exists.

    >>> lists = GoodRunLists(la.runs, la.catalog)
    >>> lists("power-only", query={"gas": "Ar"}, require=["power"])
    <GoodRunList power-only@1: 2 runs, livetime 1.4 s>
    """

    def __init__(self, runs: Runs, catalog: Sessions):
        self._runs = runs
        self._catalog = catalog

    def __call__(
        self,
        name: str,
        *,
        query: dict[str, Any] | None = None,
        require: Iterable[str] | str = (),
        version: int | None = None,
        reason: str = "",
    ) -> GoodRunList:
        """With a ``query`` or ``require``: evaluate the list now and return it, recorded as a
        new version if its content changed. Without: the newest version (or ``version``, or
        ``name@N``).

        >>> la.good_runs("standard", query={"gas": "Ar", "since": "2026-11-07"},
        ...              require=["power"], reason="for the density paper")
        <GoodRunList standard@2: 2 runs, livetime 1.4 s>
        >>> la.good_runs("standard@1")
        <GoodRunList standard@1: 2 runs, livetime 1.3 s>
        """
        name, at = _name(name)
        if version is not None and at is not None and version != at:
            raise InvalidArgument(f"{name}@{at} and version={version} disagree; give one")
        version = at if version is None else version
        making = query is not None or bool(require)
        if making and version is not None:
            raise InvalidArgument(
                "version= reads a recorded list; a query or require= makes a new one: give one "
                "or the other"
            )
        if not making:
            return self.get(name, version)
        return self.make(name, query=query or {}, require=require, reason=reason)[0]

    def get(self, name: str, version: int | None = None) -> GoodRunList:
        """A recorded version of the list ``name`` (the newest if ``version`` is None)."""
        name, at = _name(name)
        version = at if version is None else version
        if version is not None and (
            isinstance(version, bool) or not isinstance(version, int) or version < 1
        ):
            raise InvalidArgument(f"version={version!r}: versions are numbered from 1")
        row = records.good_run_list(self._catalog, name, version)
        if row is not None:
            return GoodRunList.from_row(row)
        known = self.versions()
        if name in known:
            shown = ", ".join(f"{name}@{v}" for v in known[name])
            raise NotFound(f"good-run list {name!r} has no version {version}; it has {shown}")
        hint = (
            f"; there are {', '.join(sorted(known))}"
            if known
            else "; make one with la.good_runs(NAME, query={...}) or "
            "`labledger goodruns NAME --where KEY=VALUE`"
        )
        raise NotFound(f"there is no good-run list {name!r}{hint}")

    def versions(self) -> dict[str, list[int]]:
        """Every list's name with its version numbers."""
        return records.good_run_list_versions(self._catalog)

    def make(
        self,
        name: str,
        *,
        query: dict[str, Any],
        require: Iterable[str] | str = (),
        reason: str = "",
    ) -> tuple[GoodRunList, bool]:
        """Evaluate the list and record it if its content is new; also say whether it was
        (False: the newest version had the same content and is returned as it is)."""
        name, at = _name(name)
        if at is not None:
            raise InvalidArgument(f"{name}@{at}: a new list is named without a version")
        canonical = canonical_query(query)
        required = _required(require)
        if not isinstance(reason, str):
            raise InvalidArgument(f"reason={reason!r}: say why in words, or leave it out")
        # counted before reading the flags: a flag added meanwhile makes the count look old,
        # so a staleness check errs on the side of "changed"
        seen = records.flags_seen(self._catalog)
        matched = self._runs.search(**search_arguments(canonical))
        entries = evaluate(matched, self._bad_flags(required))
        content = {"query": canonical, "require": required, "runs": entries}
        row = GoodRunListRecord(
            name=name,
            version=0,  # the next free one, taken in the transaction
            query=canonical,
            require=required,
            runs=entries,
            livetime=_total(entries),
            flags_seen=seen,
            hash=content_hash(content),
            author=author(),
            reason=reason.strip(),
            created=datetime.now(UTC),
        )
        row, recorded = records.append_good_run_list(self._catalog, row)
        made = GoodRunList.from_row(row)
        if not entries:
            what = (
                "the query matched no runs"
                if not matched
                else f"all {len(matched)} runs the query matched have an active bad flag on "
                + (", ".join(required) if required else "some subsystem")
            )
            kept = "recorded as" if recorded else "unchanged,"
            warnings.warn(
                f"good-run list {name!r} is empty: {what}; {kept} {made.label}",
                DataWarning,
                stacklevel=4,  # the caller of la.good_runs
            )
        return made, recorded

    def _bad_flags(self, required: list[str]) -> list[FlagEntry]:
        # all active bad flags of the subsystems, not those of the matched runs: far fewer
        # rows than runs, and one query however many runs matched
        return records.flags(
            self._catalog, subsystems=required or None, severity="bad", active_only=True
        )


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


def _name(name: Any) -> tuple[str, int | None]:
    """A list's name, and the version if it was given as ``name@N``."""
    if not isinstance(name, str):
        raise InvalidArgument(f"{name!r}: a good-run list is named with text, e.g. 'standard'")
    base, at, version = name.partition("@")
    if not _NAME.fullmatch(base) or (at and not version.isdigit()):
        raise InvalidArgument(
            f"good-run list {name!r}: a name is letters, digits and _ - . (at most 128), "
            "e.g. 'standard', or 'standard@3' for a version"
        )
    return base, int(version) if at else None


def _required(require: Iterable[str] | str) -> list[str]:
    subsystems = [require] if isinstance(require, str) else require
    if not isinstance(subsystems, Iterable):
        raise InvalidArgument(f"require={require!r}: a list of subsystems, e.g. ['power']")
    return sorted({check_subsystem(s) for s in subsystems})


def _total(entries: list[dict[str, Any]]) -> float | None:
    """The total livetime; unknown if any run's is (a partial sum would pass for the whole)."""
    if any(e["livetime"] is None for e in entries):
        return None
    return round(sum(e["livetime"] for e in entries), 6)
