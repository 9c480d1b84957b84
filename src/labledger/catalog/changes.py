"""What was recorded lately: runs, flags, products and withdrawals of runs created since a time,
in light columns, for notifications."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from labledger.catalog.catalog import CLOSED, Catalog
from labledger.catalog.schema import (
    FlagPeriodRow,
    FlagRow,
    ProductInputRow,
    ProductRow,
    RunRow,
    WithdrawalRow,
)


def recent(catalog: Catalog, since: datetime) -> dict[str, list[Any]]:
    """The closed runs, the flag log's rows, the products and the withdrawal log's rows created
    at or after ``since``, oldest first; a flag with the numbers of the runs it covers (a
    withdrawal: those of the flag it withdraws), a product with those it was computed over (a
    set: its parts')."""
    r, f, p = RunRow.__table__.c, FlagRow.__table__.c, ProductRow.__table__.c
    runs = (select(r.id, r.number, r.project, r.started, r.created)
            .where(r.created >= since, r.state == CLOSED).order_by(r.created))  # fmt: skip
    flags = select(FlagRow).where(f.created >= since).order_by(f.id)
    withdrawals = select(WithdrawalRow).where(WithdrawalRow.created >= since)
    products = (select(p.id, p.step, p.step_version, p.kind, p.status, p.run_number, p.level,
                       p.created).where(p.created >= since).order_by(p.created))  # fmt: skip
    with catalog.reading() as session:
        found_flags = list(session.scalars(flags))
        # a withdrawal has no periods: it covers what the flag it withdraws covered
        about = {row.id: row.target if row.action == "withdraw" else row.id for row in found_flags}
        covered: dict[int, set[int]] = {i: set() for i in about.values() if i is not None}
        if covered:
            periods = select(FlagPeriodRow.flag_id, FlagPeriodRow.run_number).where(
                FlagPeriodRow.flag_id.in_(list(covered))
            )
            for flag_id, number in session.execute(periods):
                covered[flag_id].add(number)
        found_products = list(session.execute(products))
        parts: dict[str, set[int]] = {p.id: set() for p in found_products if p.kind == "set"}
        if parts:
            i = ProductInputRow.__table__.c
            inputs = select(i.product_id, i.run_number).where(i.product_id.in_(list(parts)))
            for product_id, number in session.execute(inputs):
                if number is not None:
                    parts[product_id].add(number)
        return {
            "run": list(session.execute(runs)),
            "flag": [(row, sorted(covered.get(about[row.id], ()))) for row in found_flags],
            "product": [
                (p, sorted(parts.get(p.id, {p.run_number} - {None}))) for p in found_products
            ],
            "withdrawal": list(session.scalars(withdrawals.order_by(WithdrawalRow.id))),
        }
