"""The catalog's queries for data quality: flags (with their runs and intervals) and good-run
lists. Both are append-only logs: a row is never updated or deleted.

A flag row (``action`` "flag") covers runs, or intervals of runs (``flag_periods``). A later
row may name it in ``target``: a flag that supersedes it, or a withdrawal ("withdraw"). A flag
is *active* while no row targets it; ``target`` is unique, so a flag is replaced at most once,
even when two writers race (the second insert fails on the constraint, becoming a
:class:`~labledger.errors.Conflict`).

A good-run list is named and versioned: each version is a row with the runs that passed, their
livetime and a hash of its content; a new version is the next number for its name, taken in the
transaction that records it.

>>> from labledger.catalog import quality
>>> found = quality.flags(la.catalog, run_numbers=[1234], active_only=True)
>>> [(f.row.id, f.row.subsystem, len(f.periods)) for f in found]  # flag 1: runs 1234, 1235
[(1, 'power', 2)]
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from typing import Any

from sqlalchemy import and_, case, exists, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from labledger.catalog.database import Sessions
from labledger.catalog.schema import (
    FlagPeriodRow,
    FlagRow,
    GoodRunListRow,
    as_row,
    flag_period_table,
    flag_table,
    good_run_list_table,
    run_table,
)
from labledger.errors import Conflict, NotFound
from labledger.ids import batches
from labledger.records import (
    FLAG,
    WITHDRAW,
    FlagEntry,
    FlagPeriodRecord,
    FlagRecord,
    GoodRunListRecord,
)

# -- flags: writing -------------------------------------------------------------------------------


def append_flag(
    catalog: Sessions, row: FlagRecord, periods: Sequence[FlagPeriodRecord]
) -> FlagEntry:
    """Record a flag and its periods in one transaction. If ``row.target`` is set, the new flag
    supersedes that one, which must be active; else :class:`Conflict`."""
    row, periods = as_row(row), [as_row(p) for p in periods]
    with catalog.transaction(f"recording a {row.subsystem} flag") as session:
        if row.target is not None:
            _check_replaceable(session, row.target, "supersede")
        session.add(row)
        _flush(session, row.target)
        for period in periods:
            period.flag_id = row.id
        session.add_all(periods)
    return FlagEntry(row, list(periods))


def append_withdrawal(catalog: Sessions, row: FlagRecord) -> FlagRecord:
    """Record the withdrawal ``row`` of the active flag ``row.target``; :class:`NotFound` if
    there is no such flag, :class:`Conflict` if it is superseded or withdrawn already."""
    row = as_row(row)
    assert row.action == WITHDRAW and row.target is not None
    with catalog.transaction(f"withdrawing flag {row.target}") as session:
        _check_replaceable(session, row.target, "withdraw")
        session.add(row)
        _flush(session, row.target)
    return row


def _check_replaceable(session: Session, flag_id: int, verb: str) -> None:
    target = session.get(FlagRow, flag_id)
    if target is None or target.action != FLAG:
        raise NotFound(
            f"there is no flag {flag_id} to {verb} (list them with `labledger flag list --all`)"
        )
    replaced = session.scalars(select(FlagRow).where(flag_table.c.target == flag_id)).first()
    if replaced is not None:
        raise Conflict(_replaced_message(flag_id, replaced, verb))


def _replaced_message(flag_id: int, replaced: FlagRecord | None, verb: str) -> str:
    if replaced is None:
        how = "was superseded or withdrawn meanwhile by another writer"
    elif replaced.action == WITHDRAW:
        how = f"is withdrawn already (by {replaced.author}: {replaced.reason})"
    else:
        how = f"is superseded already, by flag {replaced.id}"
    hint = (
        f"; supersede the flag that replaced it ({replaced.id}) instead"
        if replaced is not None and replaced.action == FLAG
        else ""
    )
    return f"cannot {verb} flag {flag_id}: it {how}{hint}"


def _flush(session: Session, target: int | None) -> None:
    """Insert what is pending; the unique ``target`` turns a lost race into a Conflict that
    says which flag."""
    try:
        session.flush()
    except IntegrityError:
        if target is None:
            raise
        raise Conflict(_replaced_message(target, None, "replace")) from None


# -- flags: reading -------------------------------------------------------------------------------


def flags(
    catalog: Sessions,
    *,
    ids: Iterable[int] | None = None,
    run_numbers: Iterable[int] | None = None,
    subsystems: Iterable[str] | None = None,
    severity: str | None = None,
    active_only: bool = False,
) -> list[FlagEntry]:
    """Flags (not withdrawals) with every period of each, by id, each with the row that
    replaced it. ``run_numbers`` keeps flags covering any of those runs (in whole or part),
    ``subsystems`` flags of those subsystems, ``active_only`` those not replaced.

    One query (one per 10,000 run numbers when more are given)."""
    replacing = flag_table.alias("replacement")
    replacement = aliased(FlagRow, replacing)
    period = flag_period_table.c
    query = (
        select(FlagRow, replacement, FlagPeriodRow)
        .outerjoin(replacement, replacing.c.target == flag_table.c.id)
        .join(FlagPeriodRow, period.flag_id == flag_table.c.id)
        .where(flag_table.c.action == FLAG)
        .order_by(flag_table.c.id, period.id)
    )
    if active_only:
        query = query.where(replacing.c.id.is_(None))
    if ids is not None:
        query = query.where(flag_table.c.id.in_(list(ids)))
    if subsystems is not None:
        query = query.where(flag_table.c.subsystem.in_(list(subsystems)))
    if severity is not None:
        query = query.where(flag_table.c.severity == severity)
    if run_numbers is None:
        queries = [query]
    else:
        queries = [
            query.where(
                flag_table.c.id.in_(select(period.flag_id).where(period.run_number.in_(batch)))
            )
            for batch in batches(sorted(set(run_numbers)))
        ]
    found: dict[int, FlagEntry] = {}
    periods: dict[int, dict[int, FlagPeriodRecord]] = {}  # by flag, by id: batches may overlap
    with catalog.reading() as session:
        for q in queries:
            for flag, replaced, p in session.execute(q):
                if flag.id not in found:
                    found[flag.id] = FlagEntry(flag, [], replaced)
                    periods[flag.id] = {}
                periods[flag.id][p.id] = p
    for flag_id, record in found.items():
        record.periods = [periods[flag_id][i] for i in sorted(periods[flag_id])]
    return [found[i] for i in sorted(found)]


def flag_row(catalog: Sessions, flag_id: int) -> FlagRecord | None:
    """Any row of the flags log (a flag or a withdrawal) by id."""
    with catalog.reading() as session:
        return session.get(FlagRow, flag_id)


def flags_seen(catalog: Sessions, projects: Collection[str] | None = None) -> int:
    """How many rows the flags log holds: it grows with every flag, supersession and
    withdrawal, so a changed count means the quality of some run may have changed. (A count,
    not the newest id: PostgreSQL hands ids out at insert, and commits may land out of order.)
    With ``projects``, only the rows about runs of those projects (a withdrawal is about its
    flag's runs): a reader's count moves with what the reader can see, nothing else."""
    query = select(func.count()).select_from(FlagRow)
    if projects is not None:
        about = case((flag_table.c.action == WITHDRAW, flag_table.c.target), else_=flag_table.c.id)
        query = query.where(_of_projects(about, projects))
    with catalog.reading() as session:
        return int(session.scalar(query) or 0)


def active_counts(catalog: Sessions, projects: Collection[str] | None = None) -> dict[str, int]:
    """How many flags are active, by severity; with ``projects``, only those whose runs are
    all of those projects (as a server shows a reader)."""
    replacement = flag_table.alias("replacement").c
    replaced = exists().where(replacement.target == flag_table.c.id)
    query = (
        select(flag_table.c.severity, func.count())
        .where(flag_table.c.action == FLAG, ~replaced)
        .group_by(flag_table.c.severity)
    )
    if projects is not None:
        query = query.where(_of_projects(flag_table.c.id, projects))
    with catalog.reading() as session:
        return {str(severity): int(n) for severity, n in session.execute(query)}


def _of_projects(flag_id: Any, projects: Collection[str]) -> Any:
    """The SQL condition "flag ``flag_id`` covers no run outside ``projects``"."""
    mine = select(run_table.c.number).where(run_table.c.project.in_(list(projects)))
    elsewhere = select(flag_period_table.c.flag_id).where(
        flag_period_table.c.flag_id == flag_id, flag_period_table.c.run_number.not_in(mine)
    )
    return ~exists(elsewhere)


def bad_whole_run(runs: Any = None) -> Any:
    """The SQL condition "this run has an active flag of severity bad covering all of it", for
    a query over ``runs`` (the runs table or an alias of it): an EXISTS over the periods of the
    run's number (indexed), so a search over 100,000 runs stays one query."""
    runs = run_table if runs is None else runs
    flag, period = flag_table, flag_period_table
    replacement = flag_table.alias("replacement")
    return exists().where(
        and_(
            period.c.run_number == runs.c.number,
            period.c.start.is_(None),
            period.c.stop.is_(None),
            flag.c.id == period.c.flag_id,
            flag.c.action == FLAG,
            flag.c.severity == "bad",
            ~exists().where(replacement.c.target == flag.c.id),
        )
    )


def run_ids(catalog: Sessions, numbers: Sequence[int]) -> dict[int, str]:
    """The ids of the runs with these numbers that exist, by number."""
    found: dict[int, str] = {}
    with catalog.reading() as session:
        for batch in batches(numbers):
            query = select(run_table.c.number, run_table.c.id).where(run_table.c.number.in_(batch))
            found.update({int(n): run_id for n, run_id in session.execute(query)})
    return found


# -- good-run lists -------------------------------------------------------------------------------


def append_good_run_list(
    catalog: Sessions, row: GoodRunListRecord
) -> tuple[GoodRunListRecord, bool]:
    """Record ``row`` as the next version of its name, unless the newest version has the same
    content hash: then that one is returned and nothing is written. The second value says
    whether a version was recorded. Two writers at once: the unique (name, version) lets one
    through and gives the other a :class:`Conflict`."""
    row = as_row(row)
    with catalog.transaction(f"recording good-run list {row.name!r}") as session:
        newest = _newest(session, row.name)
        if newest is not None and newest.hash == row.hash:
            return newest, False
        row.version = (newest.version if newest is not None else 0) + 1
        session.add(row)
    return row, True


def good_run_list(
    catalog: Sessions, name: str, version: int | None = None
) -> GoodRunListRecord | None:
    """A version of the good-run list ``name``: the newest if ``version`` is None."""
    with catalog.reading() as session:
        if version is None:
            return _newest(session, name)
        query = select(GoodRunListRow).where(
            good_run_list_table.c.name == name, good_run_list_table.c.version == version
        )
        return session.scalars(query).first()


def good_run_list_versions(catalog: Sessions) -> dict[str, list[int]]:
    """Every good-run list's name with its versions, without their (possibly long) contents."""
    found: dict[str, list[int]] = {}
    query = select(good_run_list_table.c.name, good_run_list_table.c.version).order_by(
        good_run_list_table.c.name, good_run_list_table.c.version
    )
    with catalog.reading() as session:
        for name, version in session.execute(query):
            found.setdefault(name, []).append(int(version))
    return found


def good_run_lists(catalog: Sessions, name: str | None = None) -> list[GoodRunListRecord]:
    """Every version of every good-run list (or of ``name``), by name and version."""
    query = select(GoodRunListRow).order_by(
        good_run_list_table.c.name, good_run_list_table.c.version
    )
    if name is not None:
        query = query.where(good_run_list_table.c.name == name)
    with catalog.reading() as session:
        return list(session.scalars(query))


def _newest(session: Session, name: str) -> GoodRunListRecord | None:
    query = (
        select(GoodRunListRow)
        .where(good_run_list_table.c.name == name)
        .order_by(good_run_list_table.c.version.desc())
        .limit(1)
    )
    return session.scalars(query).first()
