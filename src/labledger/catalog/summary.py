"""The summary of an archive (:class:`labledger.summary.Summary`), counted by a few aggregate
queries whatever the archive's size; nothing is read from the store."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import func, select

import labledger.catalog.products as products
import labledger.catalog.quality as quality
from labledger.catalog.catalog import Catalog
from labledger.catalog.schema import RunRow, run_table, source_table
from labledger.catalog.withdrawals import withdrawn_run
from labledger.records import CLOSED
from labledger.summary import Summary


def summarize(catalog: Catalog, projects: Collection[str] | None = None) -> Summary:
    """The summary of the closed runs that are not withdrawn (of ``projects`` only, if given)
    and of the flags and products over them."""
    closed = (run_table.c.state == CLOSED) & ~withdrawn_run()
    r = run_table.c
    runs = select(
        func.count(),
        func.min(r.number),
        func.max(r.number),
        func.min(r.started),
        func.max(r.started),
        func.sum(r.data_bytes),
    ).where(closed)
    files = (
        select(source_table.c.format, func.count(), func.sum(source_table.c.size))
        .join(RunRow, run_table.c.id == source_table.c.run_id)
        .where(closed)
        .group_by(source_table.c.format)
    )
    if projects is not None:
        mine = run_table.c.project.in_(list(projects))
        runs, files = runs.where(mine), files.where(mine)
    with catalog.reading() as session:
        count, first, last, started, until, data_bytes = session.execute(runs).one()
        formats = {
            str(name): {"files": int(n), "bytes": int(size or 0)}
            for name, n, size in session.execute(files)
        }
    newest = catalog.newest(projects=projects)
    return Summary(
        runs=int(count),
        first=first,
        last=last,
        started=started,
        until=until,
        newest=newest.number if newest is not None else None,
        newest_started=newest.started if newest is not None else None,
        raw_files=sum(f["files"] for f in formats.values()),
        raw_bytes=sum(f["bytes"] for f in formats.values()),
        data_bytes=int(data_bytes or 0),
        formats=formats,
        flags=quality.active_counts(catalog, projects),
        products=products.count_current(catalog, projects),
    )
