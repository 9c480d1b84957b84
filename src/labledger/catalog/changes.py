"""What was recorded lately: runs, flags and products created since a time, in light columns,
for notifications."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from labledger.catalog.catalog import CLOSED, Catalog
from labledger.catalog.schema import FlagPeriodRow, FlagRow, ProductRow, RunRow


def recent(catalog: Catalog, since: datetime) -> dict[str, list[Any]]:
    """The closed runs, the flag log's rows (with the numbers of the runs they cover) and the
    products created at or after ``since``, each oldest first."""
    r, f, p = RunRow.__table__.c, FlagRow.__table__.c, ProductRow.__table__.c
    runs = (select(r.id, r.number, r.project, r.started, r.created)
            .where(r.created >= since, r.state == CLOSED).order_by(r.created))  # fmt: skip
    flags = select(FlagRow).where(f.created >= since).order_by(f.id)
    products = (select(p.id, p.step, p.step_version, p.kind, p.status, p.run_number, p.level,
                       p.created).where(p.created >= since).order_by(p.created))  # fmt: skip
    with catalog.reading() as session:
        found_flags = list(session.scalars(flags))
        covered: dict[int, set[int]] = {row.id: set() for row in found_flags}
        if covered:
            periods = select(FlagPeriodRow.flag_id, FlagPeriodRow.run_number).where(
                FlagPeriodRow.flag_id.in_(list(covered))
            )
            for flag_id, number in session.execute(periods):
                covered[flag_id].add(number)
        return {
            "run": list(session.execute(runs)),
            "flag": [(row, sorted(covered[row.id])) for row in found_flags],
            "product": list(session.execute(products)),
        }
