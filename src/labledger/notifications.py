"""What happens in an archive, as it happens: a run closed, a flag added or withdrawn, a product
made, a run withdrawn or restored (kind "withdrawal"), a live run reaching a state (kind
"state": created, prepared, started, stopped, closed, aborted or failed, with its reason) (the
last two asked for by name). A :class:`Watcher`
polls the catalog, so it sees what any process records (an ingest from the command line, a
computation in a notebook), not only what passes through one server.

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

KINDS = ("run", "flag", "product", "withdrawal", "state")
# a row is dated when it is made, and visible when committed: a slow ingest commits long after;
# rows are asked for over this window and told once each
_WINDOW = timedelta(hours=1)


class Watcher:
    """The events recorded since it was made, a poll at a time; only those about runs that
    ``readable(runs)`` accepts (all of a flag's runs, all of a set's parts).

    >>> watcher = Watcher(la.catalog, kinds=["flag"])
    >>> watcher.poll()
    []
    >>> _ = la.flag(run=1255, subsystem="power", severity="bad", reason="outage")
    >>> [(e["kind"], e["id"], e["runs"], e["reason"]) for e in watcher.poll()]
    [('flag', 3, [1255], 'outage')]
    """

    def __init__(
        self,
        catalog: Catalog,
        *,
        kinds: Collection[str] = KINDS,
        readable: Callable[[list[int]], bool] = lambda runs: True,
    ):
        unknown = sorted(set(kinds) - set(KINDS))
        if unknown or not kinds:
            raise InvalidArgument(f"kinds {unknown or list(kinds)}: some of {', '.join(KINDS)}")
        self._catalog, self._kinds, self._readable = catalog, set(kinds), readable
        self._started = datetime.now(UTC)
        now = self._started
        # what existed before: not news
        self._seen = {e["key"]: now for e in self._events(recent(catalog, now - _WINDOW))}

    def poll(self) -> list[dict[str, Any]]:
        """The events recorded since the last poll (oldest first)."""
        return [public(e) for e in self.news() if self._readable(e["_runs"])]

    def news(self) -> list[dict[str, Any]]:
        """The events of its kinds recorded since the last poll, oldest first, whoever may
        read them: each with the run numbers it is about in ``_runs`` (for a server that
        polls once for many subscribers and tells each what it may read)."""
        now = datetime.now(UTC)
        news = []
        for event in self._events(recent(self._catalog, max(self._started, now) - _WINDOW)):
            if event["key"] in self._seen:
                continue
            self._seen[event["key"]] = now
            if event["kind"] in self._kinds:
                news.append(event)
        news.sort(key=lambda e: e["_at"])  # in the order they were recorded, whatever the kind
        for key in [k for k, when in self._seen.items() if when < now - 2 * _WINDOW]:
            del self._seen[key]
        return news

    def _events(self, found: dict[str, list[Any]]) -> Iterator[dict[str, Any]]:
        for r in found["run"]:
            yield {
                "key": f"run:{r.id}",
                "kind": "run",
                "number": r.number,
                "id": r.id,
                "project": r.project,
                "started": r.started.isoformat(),
                "_runs": [r.number],
                "_at": r.created,
            }
        for row, runs in found["flag"]:
            yield {
                "key": f"flag:{row.id}",
                "kind": "flag",
                "id": row.id,
                "action": row.action,
                "target": row.target,
                "subsystem": row.subsystem,
                "severity": row.severity,
                "reason": row.reason,
                "author": row.author,
                "runs": runs,
                "_runs": runs,
                "_at": row.created,
            }
        for w in found["withdrawal"]:
            yield {
                "key": f"withdrawal:{w.id}",
                "kind": "withdrawal",
                "id": w.id,
                "action": w.action,
                "run": w.run_number,
                "run_id": w.run_id,
                "target": w.target,
                "reason": w.reason,
                "author": w.author,
                "_runs": [w.run_number],
                "_at": w.created,
            }
        for s in found["state"]:
            yield {
                "key": f"state:{s.run_id}:{s.state}",
                "kind": "state",
                "number": s.number,
                "id": s.run_id,
                "project": s.project,
                "state": s.state,
                "at": s.at.isoformat(),
                "reason": s.reason,
                "_runs": [s.number],
                "_at": s.at,
            }
        for p, runs in found["product"]:
            yield {
                "key": f"product:{p.id}",
                "kind": "product",
                "id": p.id,
                "step": p.step,
                "version": p.step_version,
                "product_kind": p.kind,
                "status": p.status,
                "run": p.run_number,
                "level": p.level,
                "_runs": runs,
                "_at": p.created,
            }


def public(event: dict[str, Any]) -> dict[str, Any]:
    """An event as subscribers get it: without the watcher's own bookkeeping."""
    return {k: v for k, v in event.items() if not k.startswith("_") and k != "key"}


def watch(
    catalog: Catalog,
    *,
    kinds: Collection[str] = KINDS,
    readable: Callable[[list[int]], bool] = lambda runs: True,
    interval: float = 0.5,
    timeout: float | None = None,
) -> Iterator[dict[str, Any]]:
    """Events from now on (see :class:`Watcher`), polled every ``interval`` s; stops after
    ``timeout`` s if given. Bad arguments are refused here, not at the first event."""
    if interval <= 0:
        raise InvalidArgument(f"interval={interval}: a positive number of seconds")
    watcher = Watcher(catalog, kinds=kinds, readable=readable)
    return _polled(watcher, interval, timeout)


def _polled(watcher: Watcher, interval: float, timeout: float | None) -> Iterator[dict[str, Any]]:
    deadline = None if timeout is None else clock.monotonic() + timeout
    while deadline is None or clock.monotonic() < deadline:
        yield from watcher.poll()
        clock.sleep(interval)
