"""What happens in an archive, as it happens: a run closed, a flag added or withdrawn, a product
made. :func:`watch` polls the catalog, so it sees what any process records (an ingest from the
command line, a computation in a notebook), not only what passes through one server.

>>> for event in la.subscribe():                                    # doctest: +SKIP
...     print(event["kind"], event)
"""

from __future__ import annotations

import time as clock
from collections.abc import Callable, Collection, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from labledger.catalog import Catalog
from labledger.catalog.changes import recent
from labledger.errors import InvalidArgument

KINDS = ("run", "flag", "product")
# a row is dated when it is made, and visible when committed: a slow ingest commits long after;
# rows are asked for over this window and told once each
_WINDOW = timedelta(hours=1)


def watch(
    catalog: Catalog,
    *,
    kinds: Collection[str] = KINDS,
    readable: Callable[[str], bool] = lambda project: True,
    interval: float = 0.5,
    timeout: float | None = None,
) -> Iterator[dict[str, Any]]:
    """Events from now on, as dicts with ``kind`` ("run", "flag", "product"); only about runs
    of projects ``readable`` accepts. Stops after ``timeout`` s if given. Bad arguments are
    refused here, not at the first event."""
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown or not kinds:
        raise InvalidArgument(f"kinds {unknown or list(kinds)}: some of {', '.join(KINDS)}")
    if interval <= 0:
        raise InvalidArgument(f"interval={interval}: a positive number of seconds")
    return _watch(catalog, kinds, readable, interval, timeout)


def _watch(
    catalog: Catalog,
    kinds: Collection[str],
    readable: Callable[[str], bool],
    interval: float,
    timeout: float | None,
) -> Iterator[dict[str, Any]]:
    started = datetime.now(UTC)
    seen = _told(catalog, started - _WINDOW)  # what existed before: not news
    deadline = None if timeout is None else clock.monotonic() + timeout
    projects: dict[int, str] = {}
    while deadline is None or clock.monotonic() < deadline:
        now = datetime.now(UTC)
        found = recent(catalog, max(started, now) - _WINDOW)
        for row in found["run"]:
            projects[row.number] = row.project
        _learn_projects(catalog, found, projects)
        for event in _events(catalog, found, kinds, projects):
            if event["key"] not in seen:
                seen[event["key"]] = now
                if _allowed(event, readable, projects):
                    yield {k: v for k, v in event.items() if k != "key"}
        for key in [k for k, when in seen.items() if when < now - 2 * _WINDOW]:
            del seen[key]
        clock.sleep(interval)


def _learn_projects(
    catalog: Catalog, found: dict[str, list[Any]], projects: dict[int, str]
) -> None:
    """The projects of the runs flags and products name, asked once per run."""
    named = {n for _, runs in found["flag"] for n in runs}
    named |= {p.run_number for p in found["product"] if p.run_number is not None}
    missing = sorted(named - set(projects))
    if missing:
        projects.update({r.number: r.project for r in catalog.by_numbers(missing)})


def _told(catalog: Catalog, since: datetime) -> dict[str, datetime]:
    now = datetime.now(UTC)
    return {event["key"]: now for event in _events(catalog, recent(catalog, since), KINDS, {})}


def _events(
    catalog: Catalog, found: dict[str, list[Any]], kinds: Collection[str], projects: dict[int, str]
) -> Iterator[dict[str, Any]]:
    if "run" in kinds:
        for r in found["run"]:
            yield {"key": f"run:{r.id}", "kind": "run", "number": r.number, "id": r.id,
                   "project": r.project, "started": r.started.isoformat()}  # fmt: skip
    if "flag" in kinds:
        for row, runs in found["flag"]:
            yield {"key": f"flag:{row.id}", "kind": "flag", "id": row.id, "action": row.action,
                   "target": row.target, "subsystem": row.subsystem, "severity": row.severity,
                   "reason": row.reason, "author": row.author, "runs": runs}  # fmt: skip
    if "product" in kinds:
        for p in found["product"]:
            yield {"key": f"product:{p.id}", "kind": "product", "id": p.id, "step": p.step,
                   "version": p.step_version, "product_kind": p.kind, "status": p.status,
                   "run": p.run_number, "level": p.level}  # fmt: skip


def _allowed(
    event: dict[str, Any], readable: Callable[[str], bool], projects: dict[int, str]
) -> bool:
    if event["kind"] == "run":
        return readable(event["project"])
    runs = event["runs"] if event["kind"] == "flag" else [event["run"]]
    if not runs or None in runs:  # a product over several runs, a withdrawal: who may see all
        return readable("*")
    return all(readable(projects.get(n, "")) for n in runs)
