"""What was recorded lately: runs, flags, products and withdrawals of runs created since a time,
and the states live runs reached since then, in light columns, for notifications."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from labledger.catalog.catalog import Catalog
from labledger.catalog.schema import (
    FlagRow,
    WithdrawalRow,
    flag_period_table,
    flag_table,
    product_input_table,
    product_table,
    run_state_table,
    run_table,
    withdrawal_table,
)
from labledger.records import (
    CLOSED,
)


def recent(catalog: Catalog, since: datetime) -> dict[str, list[Any]]:
    """The closed runs, the flag log's rows, the products and the withdrawal log's rows created
    at or after ``since``, and the states live runs reached then (with each run's number and
    project), oldest first; a flag with the numbers of the runs it covers (a
    withdrawal: those of the flag it withdraws), a product with those it was computed over (a
    set: its parts')."""
    r, f, p = run_table.c, flag_table.c, product_table.c
    runs = (
        select(r.id, r.number, r.project, r.started, r.created)
        .where(r.created >= since, r.state == CLOSED)
        .order_by(r.created)
    )
    flags = select(FlagRow).where(f.created >= since).order_by(f.id)
    withdrawals = select(WithdrawalRow).where(withdrawal_table.c.created >= since)
    products = (
        select(p.id, p.step, p.step_version, p.kind, p.status, p.run_number, p.level, p.created)
        .where(p.created >= since)
        .order_by(p.created)
    )
    s = run_state_table.c
    states = (
        select(s.run_id, r.number, r.project, s.state, s.at, s.reason)
        .join(run_table, run_table.c.id == s.run_id)
        .where(s.at >= since)
        .order_by(s.at)
    )
    with catalog.reading() as session:
        found_flags = list(session.scalars(flags))
        # a withdrawal has no periods: it covers what the flag it withdraws covered (one
        # without a target covers nothing)
        about: dict[int, int] = {}
        for row in found_flags:
            target = row.target if row.action == "withdraw" else row.id
            if target is not None:
                about[row.id] = target
        covered: dict[int, set[int]] = {i: set() for i in about.values()}
        if covered:
            periods = select(flag_period_table.c.flag_id, flag_period_table.c.run_number).where(
                flag_period_table.c.flag_id.in_(list(covered))
            )
            for flag_id, number in session.execute(periods):
                covered[flag_id].add(number)
        found_products = list(session.execute(products))
        parts: dict[str, set[int]] = {p.id: set() for p in found_products if p.kind == "set"}
        if parts:
            i = product_input_table.c
            inputs = select(i.product_id, i.run_number).where(i.product_id.in_(list(parts)))
            for product_id, number in session.execute(inputs):
                if number is not None:
                    parts[product_id].add(number)
        return {
            "run": list(session.execute(runs)),
            "flag": [
                (row, sorted(covered[about[row.id]]) if row.id in about else [])
                for row in found_flags
            ],
            "product": [
                (p, sorted(parts.get(p.id, {p.run_number} - {None}))) for p in found_products
            ],
            "withdrawal": list(session.scalars(withdrawals.order_by(withdrawal_table.c.id))),
            "state": list(session.execute(states)),
        }
