"""The catalog's side of live runs: a run recorded as it is created, each state as reached
(forward only), and its data, sources and final state in one commit once the saver has stored
them.

A live run is known by its number and the moment it was created: Redis may hold a new run 1271
once an earlier one was saved and removed, and that is another run, refused here (its number is
taken). The catalog says ``closed`` (or ``aborted``/``failed``) only in the commit that names the
run's stored data: a closed run is always readable whole.

>>> from labledger.catalog import live
>>> [s.state for s in live.states(la.catalog, run.id)]                  # doctest: +SKIP
['created', 'prepared', 'started', 'stopped', 'closed']
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import cast

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from labledger.catalog.database import Sessions
from labledger.catalog.schema import (
    RunRow,
    RunStateRow,
    as_row,
    config_change_table,
    metadata_rows,
    run_state_table,
    run_table,
)
from labledger.errors import Conflict, NotFound, RunConflict
from labledger.records import (
    ENDED,
    RUN_STATES,
    ChannelRecord,
    RunRecord,
    RunStateRecord,
    SourceRecord,
)

PREPARED = RUN_STATES[1]
_TRIES = 3  # a run recorded by two writers at once: the second finds the first's row
OPEN = RUN_STATES[:4]  # created, prepared, started, stopped: a live run not yet saved whole


def record(catalog: Sessions, run: RunRecord, reached: Sequence[RunStateRecord]) -> RunRecord:
    """The catalog's row of live run ``run``: added (stamped with the configuration version in
    force) if the catalog has no run of its number, else the one it has, brought forward to the
    states ``reached`` (those it lacks are added; none of ``ENDED``: :func:`finish` records
    those with the data). :class:`RunConflict` if the number belongs to another run."""
    created = next((s.at for s in reached if s.state == RUN_STATES[0]), run.created)
    for attempt in range(_TRIES):
        try:
            with catalog.transaction(f"recording live run {run.number}") as session:
                row = session.scalars(
                    select(RunRow).where(run_table.c.number == run.number)
                ).first()
                if row is None:
                    row = cast(RunRow, as_row(run))
                    row.config_version = _in_force(session)
                    session.add(row)
                    session.flush()
                    session.add_all(metadata_rows(row))
                elif _created(session, row.id) != created:
                    raise RunConflict(
                        f"run {run.number} is already in the archive (another run of that "
                        "number): acquire under another run number"
                    )
                _advance(session, row, [s for s in reached if s.state not in ENDED])
            return row
        except RunConflict:
            raise
        except Conflict:  # the saver and the acquisition recorded it at the same moment
            if attempt == _TRIES - 1:
                raise
    raise AssertionError("unreachable")


def finish(
    catalog: Sessions,
    run: RunRecord,
    reached: Sequence[RunStateRecord],
    sources: Sequence[tuple[SourceRecord, list[ChannelRecord]]],
) -> None:
    """Record a saved live run in one commit: its sources and channels, the states it
    ``reached`` up to its final one, and what ``run`` now says of it (channels, bytes, start,
    end, complete, reason). Done once: a run already ended is refused."""
    with catalog.transaction(f"recording saved live run {run.number}") as session:
        held = session.get(RunRow, run.id)
        if held is None:
            raise NotFound(f"live run {run.number} is not in the catalog; record it first")
        if held.state in ENDED:
            raise Conflict(f"live run {run.number} is {held.state} already")
        for source, channels in sources:
            source = as_row(source)
            source.run_id = run.id
            session.add(source)
            session.flush()
            rows = [as_row(c) for c in channels]
            for channel in rows:
                channel.run_id, channel.source_id = run.id, source.id
            session.add_all(rows)
        _advance(session, held, reached)
        session.execute(
            update(run_table)
            .where(run_table.c.id == run.id)
            .values(
                n_channels=run.n_channels,
                data_bytes=run.data_bytes,
                started=run.started,
                ended=run.ended,
                complete=run.complete,
                reason=run.reason,
                structure=run.structure,
            )
        )


def states(catalog: Sessions, run_id: str) -> list[RunStateRecord]:
    """The states run ``run_id`` reached, in order (none for a run ingested from files)."""
    with catalog.reading() as session:
        found = session.scalars(select(RunStateRow).where(run_state_table.c.run_id == run_id))
        return sorted(found, key=lambda s: RUN_STATES.index(s.state))


def open_runs(catalog: Sessions, projects: Collection[str] | None = None) -> list[RunRecord]:
    """The live runs not yet saved whole, newest first (of ``projects`` only, if given)."""
    query = select(RunRow).where(run_table.c.state.in_(OPEN))
    if projects is not None:
        query = query.where(run_table.c.project.in_(list(projects)))
    with catalog.reading() as session:
        return list(session.scalars(query.order_by(run_table.c.created.desc())))


def _in_force(session: Session) -> int | None:
    return session.scalar(select(func.max(config_change_table.c.id)))


def _created(session: Session, run_id: str) -> datetime | None:
    return session.scalar(
        select(run_state_table.c.at).where(
            run_state_table.c.run_id == run_id, run_state_table.c.state == RUN_STATES[0]
        )
    )


def _advance(session: Session, row: RunRow, reached: Sequence[RunStateRecord]) -> None:
    """Add the states the catalog lacks; the run's state becomes the furthest, never going
    back (Redis decides the order: this only mirrors it)."""
    had = set(
        session.scalars(select(run_state_table.c.state).where(run_state_table.c.run_id == row.id))
    )
    for state in reached:
        if state.state in had:
            continue
        session.add(RunStateRow(run_id=row.id, state=state.state, at=state.at, reason=state.reason))
        had.add(state.state)
        if state.state == PREPARED:  # the configuration in force is stamped at prepare
            row.config_version = _in_force(session)
    furthest = max(had, key=RUN_STATES.index, default=row.state)
    if row.state not in ENDED and RUN_STATES.index(furthest) > RUN_STATES.index(row.state):
        row.state = furthest
        said = next((s for s in reached if s.state == furthest and s.reason), None)
        if said is not None:
            row.reason = said.reason
