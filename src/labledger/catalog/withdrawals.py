"""The catalog's queries for withdrawn runs: an append-only log, never updated or deleted.

A run ingested by mistake (a note that became a run of one junk channel) is *withdrawn*: a row
(``action`` "withdraw") with the reason, who and when. It leaves listings and searches, and
stays readable by number and id. A *restoration* is a later row ("restore") whose ``target``
names the withdrawal it undoes; ``target`` is unique, so a withdrawal is undone at most once. A
run is withdrawn while it has a withdrawal that no row targets.

Each row of a run has the next ``seq`` (1, 2, ...), unique per run: the check "is it withdrawn
already" runs inside the writing transaction, and two writers who both pass it under
PostgreSQL's READ COMMITTED take the same ``seq``, so the second is refused (a
:class:`~labledger.errors.Conflict`) rather than withdrawing a run twice.

>>> from labledger.catalog import withdrawals
>>> _ = la.withdraw(run, reason="a note, not a shot")
>>> [(row.reason, restored) for row, restored in withdrawals.history(la.catalog, run_ids=[run.id])]
[('a note, not a shot', None)]
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import and_, exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from labledger.catalog.database import Sessions
from labledger.catalog.schema import WithdrawalRow, as_row, run_table, withdrawal_table
from labledger.errors import Conflict
from labledger.ids import batches
from labledger.records import RESTORE, WITHDRAW, WithdrawalEntry, WithdrawalRecord


def withdrawn_run(runs: Any = None) -> Any:
    """The SQL condition "this run is withdrawn", for a query over ``runs`` (the runs table or
    an alias of it): an EXISTS over the run's rows (indexed by run id), so a listing of 100,000
    runs stays one query."""
    runs = run_table if runs is None else runs
    log = withdrawal_table
    undone = withdrawal_table.alias("undone")
    return exists().where(
        and_(
            log.c.run_id == runs.c.id,
            log.c.action == WITHDRAW,
            ~exists().where(undone.c.target == log.c.id),
        )
    )


def append(catalog: Sessions, row: WithdrawalRecord, *, number: int) -> WithdrawalRecord:
    """Record ``row``, a withdrawal or a restoration of run ``number``, checked against the
    run's history inside the transaction: a run is withdrawn only if it is not withdrawn, and
    restored only if it is (``row.target`` is then set to the withdrawal it undoes). Else, or
    if another writer recorded a row for the run meanwhile, :class:`Conflict`."""
    row = as_row(row)
    verb = "withdrawing" if row.action == WITHDRAW else "restoring"
    with catalog.transaction(f"{verb} run {number}") as session:
        newest = _newest(session, row.run_id)
        active = newest if newest is not None and newest.action == WITHDRAW else None
        if row.action == WITHDRAW and active is not None:
            raise Conflict(
                f"run {number} is withdrawn already ({active.reason}; by {active.author} at "
                f"{active.created:%Y-%m-%d %H:%M:%S} UTC); restore it first to withdraw it again"
            )
        if row.action == RESTORE:
            if active is None:
                raise Conflict(
                    f"run {number} is not withdrawn, so there is nothing to restore (see the "
                    f"withdrawn runs with `labledger runs --withdrawn`)"
                )
            row.target = active.id
        row.seq = (newest.seq if newest is not None else 0) + 1
        session.add(row)
        try:
            session.flush()
        except IntegrityError:  # the same seq, or target, taken by another writer meanwhile
            raise Conflict(
                f"run {number} was withdrawn or restored by another writer meanwhile; look at "
                f"it again (`labledger show {number}`) and retry"
            ) from None
    return row


def history(
    catalog: Sessions,
    *,
    run_ids: Iterable[str] | None = None,
    active_only: bool = False,
) -> list[WithdrawalEntry]:
    """Every withdrawal (of ``run_ids`` only, if given), oldest first, each with the row that
    restored the run (None: still withdrawn); ``active_only`` keeps those not restored.

    One query (one per 5,000 run ids when more are given)."""
    restoring = withdrawal_table.alias("restore")
    restore = aliased(WithdrawalRow, restoring)
    query = (
        select(WithdrawalRow, restore)
        .outerjoin(restore, restoring.c.target == withdrawal_table.c.id)
        .where(withdrawal_table.c.action == WITHDRAW)
        .order_by(withdrawal_table.c.id)
    )
    if active_only:
        query = query.where(restoring.c.id.is_(None))
    queries = (
        [query]
        if run_ids is None
        else [query.where(withdrawal_table.c.run_id.in_(batch)) for batch in batches(run_ids)]
    )
    found: dict[int, WithdrawalEntry] = {}
    with catalog.reading() as session:
        for q in queries:
            for withdrawal, restored in session.execute(q):
                found[withdrawal.id] = (withdrawal, restored)
    return [found[i] for i in sorted(found)]


def _newest(session: Session, run_id: str) -> WithdrawalRecord | None:
    query = (
        select(WithdrawalRow)
        .where(withdrawal_table.c.run_id == run_id)
        .order_by(withdrawal_table.c.seq.desc())
        .limit(1)
    )
    return session.scalars(query).first()
