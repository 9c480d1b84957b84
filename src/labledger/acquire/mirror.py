"""What Redis says of a live run, as the catalog records it: the run and the states it reached.

The acquisition records its run when it prepares it (the configuration in force is stamped
then), and the saver whenever it sees a run or a state it has not recorded: either may come
first, and recording twice changes nothing (:func:`labledger.catalog.live.record`).
"""

from __future__ import annotations

import redis

from labledger.catalog import live as catalog_live
from labledger.catalog.database import Sessions
from labledger.ids import DEFAULT_PROJECT, uuid7
from labledger.live import RunInfo, RunKeys, State, history, run_info
from labledger.records import RunRecord, RunStateRecord
from labledger.store.layout import run_prefix


def record(catalog: Sessions, client: redis.Redis, keys: RunKeys) -> tuple[RunRecord, RunInfo]:
    """The catalog's row of the live run at ``keys`` (added, or brought forward to the states
    Redis says it reached), and what Redis says of it."""
    info = run_info(client, keys)
    return catalog_live.record(catalog, as_record(info), reached(client, keys)), info


def as_record(info: RunInfo) -> RunRecord:
    """A catalog record of the run as Redis says it is, before anything is saved (a new id:
    the catalog keeps the one it has, if it has the run)."""
    created = info.reached[State.CREATED]
    run_id = uuid7()
    return RunRecord(
        id=run_id,
        number=info.run,
        state=State.CREATED.value,
        started=info.reached.get(State.STARTED, created),
        ended=None,
        created=created,
        meta=dict(info.metadata),
        store_prefix=run_prefix(run_id),
        n_channels=len(info.channels),
        data_bytes=0,
        project=DEFAULT_PROJECT,
        complete=False,
        structure=info.structure or None,
    )


def reached(client: redis.Redis, keys: RunKeys) -> list[RunStateRecord]:
    """The states the run reached, in order, as records (their run set by the catalog)."""
    return [
        RunStateRecord(run_id="", state=t.state.value, at=t.at, reason=t.reason or None)
        for t in history(client, keys)
    ]
