"""Staleness, computed rather than remembered: a product is stale when what it was made from is
no longer what the archive says now.

A product records, for every run it read, the quality flags in force on it and each calibration
version applied by default (and the run's withdrawal, if it was withdrawn); for every product it
read, that product's id. It is stale if a flag was added to or withdrawn from one of its runs
since, if one of its runs was withdrawn (or restored) since, if another calibration version is
now in force for a run it read, if a product it read was recomputed (superseded) or is itself
stale, or if the good-run list it used has a newer version. Nothing is ever marked in place, so
nothing can be marked wrongly: the answer follows from the logs, which only grow.

Reuse asks the same question: an earlier product with the same inputs is reused only if it is
not stale.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from labledger.catalog import products as queries
from labledger.ids import short
from labledger.machine.calibration import in_force
from labledger.records import ProductRecord

if TYPE_CHECKING:
    from labledger.lineage.home import Home
    from labledger.withdrawals import Withdrawal


class Checker:
    """Answers "is it stale, and why" for many products against one view of the logs."""

    def __init__(self, archive: Home):
        self._archive = archive
        self._snapshot = archive.logs.current()
        self._flags: dict[int, dict[int, Any]] = {}  # run number -> flag id -> flag
        self._withdrawn: dict[str, Withdrawal | None] = {}  # run id -> withdrawal in force
        self._runs: dict[str, Any] = {}
        self._newest: dict[str, ProductRecord] = {}
        self._rows: dict[str, ProductRecord] = {}
        self._memo: dict[str, list[str]] = {}

    def prepare(self, rows: Iterable[ProductRecord]) -> None:
        """Fetch in a few queries what checking these rows will ask (their runs' flags, the
        newest products of their inputs' slots), rather than a query per product."""
        rows = list(rows)
        numbers = {r["number"] for row in rows for r in _runs(row)}
        self._load_flags(numbers)
        self._load_withdrawals({r["id"] for row in rows for r in _runs(row)})
        parents = [i["id"] for row in rows for i in _products(row)]
        found = queries.by_ids(self._archive.catalog, [p for p in parents if p not in self._rows])
        self._rows.update(found)
        slots = [r.slot for r in found.values() if r.slot not in self._newest]
        self._newest.update(queries.newest_in_slots(self._archive.catalog, slots))

    def reasons(self, row: ProductRecord) -> list[str]:
        """Why ``row`` is stale; empty if it is not."""
        if row.id in self._memo:
            return self._memo[row.id]
        self._memo[row.id] = []  # a cycle cannot happen, but must not recurse for ever
        self.prepare([row])
        found: list[str] = []
        for run in _runs(row):
            found += self._run_reasons(run)
        for parent in _products(row):
            found += self._parent_reasons(parent)
        used = row.provenance.get("inputs", {}).get("good_runs")
        if used:
            newest = self._archive.good_runs(used["name"])
            if newest.version != used["version"]:
                found.append(
                    f"good-run list {newest.label} supersedes {used['name']}@{used['version']}"
                )
        self._memo[row.id] = found
        return found

    def _run_reasons(self, run: dict[str, Any]) -> list[str]:
        number, found = run["number"], []
        now = self._flags.get(number, {})
        recorded = set(run.get("flags", []))
        for flag_id in sorted(set(now) - recorded):
            flag = now[flag_id]
            found.append(
                f"run {number}: flag {flag_id} added since ({flag.subsystem}, {flag.severity}: "
                f"{flag.reason}; by {flag.author})"
            )
        for flag_id in sorted(recorded - set(now)):
            found.append(f"run {number}: flag {flag_id} withdrawn or superseded since")
        withdrawal = self.withdrawal(run["id"])
        if withdrawal is not None and withdrawal.id != run.get("withdrawn"):
            found.append(
                f"run {number}: withdrawn since ({withdrawal.reason}; by {withdrawal.author})"
            )
        elif withdrawal is None and run.get("withdrawn") is not None:
            found.append(f"run {number}: restored since (it was withdrawn when read)")
        explicit = set(run.get("explicit", []))
        for name, label in sorted(run.get("calibrations", {}).items()):
            if name in explicit:
                continue  # asked for by version: what is in force now does not matter
            started = self._started(run)
            cal = in_force(self._snapshot, name, number, started) if started else None
            if cal is not None and cal.label != label:
                found.append(
                    f"run {number}: calibration {cal.label} is now in force (read {label})"
                )
        return found

    def _parent_reasons(self, parent: dict[str, Any]) -> list[str]:
        row = self._rows.get(parent["id"])
        if row is None:
            return [f"input product {parent['id']} is missing from the catalog"]
        what = label(row)
        newest = self._newest.get(row.slot)
        if newest is not None and newest.id != row.id:
            return [f"input {what} was recomputed as {short(newest.id)}"]
        inherited = self.reasons(row)
        return [f"input {what} is stale: {inherited[0]}"] if inherited else []

    def know(self, runs: Iterable[Any]) -> None:
        """Take these runs' start times from the Runs at hand, instead of asking the catalog,
        and fetch the flags in force on all of them in one query."""
        runs = list(runs)
        self._runs.update({run.id: run.started for run in runs})
        self._load_flags({run.number for run in runs})
        self._load_withdrawals({run.id for run in runs})

    def _started(self, run: dict[str, Any]) -> Any:
        found = self._runs.get(run["id"])
        if found is None:
            row = self._archive.catalog.by_id(run["id"])
            found = self._runs[run["id"]] = row.started if row else None
        return found

    def _load_flags(self, numbers: set[int]) -> None:
        missing = sorted(n for n in numbers if n not in self._flags)
        if not missing:
            return
        active = self._archive.flags.active(missing)
        for number in missing:
            self._flags[number] = {f.id: f for f in active.get(number, [])}

    def _load_withdrawals(self, run_ids: set[str]) -> None:
        missing = sorted(i for i in run_ids if i not in self._withdrawn)
        if not missing:
            return
        active = self._archive.withdrawals.active(missing)
        for run_id in missing:
            self._withdrawn[run_id] = active.get(run_id)

    def withdrawal(self, run_id: str) -> Withdrawal | None:
        """The withdrawal in force on run ``run_id`` now (None: it is not withdrawn)."""
        self._load_withdrawals({run_id})
        return self._withdrawn[run_id]

    def flag_ids(self, number: int) -> list[int]:
        """The ids of the flags in force on run ``number`` now."""
        self._load_flags({number})
        return sorted(self._flags[number])


def stale_rows(
    archive: Home, rows: Iterable[ProductRecord] | None = None
) -> list[tuple[ProductRecord, list[str]]]:
    """The current products' rows (or those of ``rows``) that are stale, oldest first, each
    with the reasons (:func:`labledger.lineage.products.stale` makes them products)."""
    rows = list(queries.current(archive.catalog) if rows is None else rows)
    checker = Checker(archive)
    checker.prepare(rows)
    found = []
    for row in rows:
        reasons = checker.reasons(row)
        if reasons:
            found.append((row, reasons))
    return found


def _runs(row: ProductRecord) -> list[dict[str, Any]]:
    return row.provenance.get("inputs", {}).get("runs", [])


def _products(row: ProductRecord) -> list[dict[str, Any]]:
    return row.provenance.get("inputs", {}).get("products", [])


def label(row: ProductRecord) -> str:
    """A product for a message: its short id, its step's function and its run."""
    where = f" of run {row.run_number}" if row.run_number is not None else ""
    return f"{short(row.id)} ({row.step.rpartition(':')[2]}{where})"
