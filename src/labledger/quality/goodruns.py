"""Good-run lists: named, versioned, hashed snapshots of the runs fit for an analysis.

A list is made from a query (``la.runs.search`` keywords) and the subsystems an analysis
requires: the runs the query matches, less those an active flag of severity bad covers whole
on a required subsystem (on any subsystem if none is required). Each run keeps its livetime,
its duration less the intervals that active bad flags on required subsystems take out of it.

Each evaluation whose content (query, required subsystems, runs with their excluded intervals
and livetime) differs from the newest version's is recorded as the next version; the same
content gives back that version, unchanged. An analysis records the label (``standard@3``) or
the hash of the list it used, and can always read that version again.

>>> grl = la.good_runs("standard", query={"gas": "Ar"}, require=["power", "probe"])
>>> grl.label, len(grl), grl.livetime
('standard@1', 2, 1.3)
>>> la.good_runs("standard", version=1).runs == grl.runs
True
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from labledger.errors import InvalidArgument
from labledger.records import RUN_STATES, FlagEntry, GoodRunListRecord
from labledger.times import parse_when

if TYPE_CHECKING:
    from labledger.runs import Run

# the keywords of la.runs.search that are not metadata keys
_SEARCH = ("since", "until", "source", "state", "limit", "quality")


@dataclass(frozen=True, eq=False)
class GoodRunList:
    """One version of a named good-run list.

    ``runs`` are the run numbers that passed, ascending; ``livetimes`` each one's livetime in
    s (None where the run's end is not known), ``excluded`` the intervals taken out of it by
    bad flags, ``livetime`` the total (None if any run's is unknown). ``query``, ``require``
    and ``flags_seen`` (how many rows the flags log held) say what it was made from; ``hash``
    identifies its content. Iterating gives the run numbers.

    >>> grl = la.good_runs("standard")
    >>> 1255 in grl, 1234 in grl, grl.label, len(grl.hash)
    (True, False, 'standard@1', 64)
    """

    name: str
    version: int
    hash: str
    runs: list[int]
    livetimes: dict[int, float | None]
    excluded: dict[int, list[tuple[float, float]]]
    livetime: float | None
    query: dict[str, Any]
    require: list[str]
    flags_seen: int
    author: str
    created: datetime
    reason: str

    @classmethod
    def from_row(cls, row: GoodRunListRecord) -> GoodRunList:
        """The version a catalog row records."""
        entries = row.runs
        return cls(
            name=row.name,
            version=row.version,
            hash=row.hash,
            runs=[e["run"] for e in entries],
            livetimes={e["run"]: e["livetime"] for e in entries},
            excluded={e["run"]: [(a, b) for a, b in e["excluded"]] for e in entries},
            livetime=row.livetime,
            query=row.query,
            require=list(row.require),
            flags_seen=row.flags_seen,
            author=row.author,
            created=row.created,
            reason=row.reason,
        )

    @property
    def label(self) -> str:
        """``name@version``, the way to name this version again."""
        return f"{self.name}@{self.version}"

    def __iter__(self) -> Iterator[int]:
        return iter(self.runs)

    def __len__(self) -> int:
        return len(self.runs)

    def __contains__(self, run: object) -> bool:
        number = getattr(run, "number", run)  # a Run or a run number
        return number in self.livetimes

    def __eq__(self, other: object) -> bool:
        return isinstance(other, GoodRunList) and (other.label, other.hash) == (
            self.label,
            self.hash,
        )

    def __hash__(self) -> int:
        return hash((self.label, self.hash))

    def __repr__(self) -> str:
        livetime = "unknown" if self.livetime is None else f"{self.livetime:g} s"
        return f"<GoodRunList {self.label}: {len(self)} runs, livetime {livetime}>"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "label": self.label,
            "hash": self.hash,
            "runs": [
                {"run": n, "livetime": self.livetimes[n], "excluded": self.excluded[n]}
                for n in self.runs
            ],
            "livetime": self.livetime,
            "query": self.query,
            "require": self.require,
            "flags_seen": self.flags_seen,
            "author": self.author,
            "created": self.created.isoformat(),
            "reason": self.reason,
        }


def evaluate(runs: list[Run], bad: list[FlagEntry]) -> list[dict[str, Any]]:
    """The runs that no bad flag covers whole, each with the merged intervals that bad flags
    take out of it and its livetime: duration (end - start) less those intervals, in s; None
    when the run's end is unknown."""
    whole: set[int] = set()
    intervals: dict[int, list[tuple[float, float]]] = {}
    for record in bad:
        for p in record.periods:
            if p.start is None or p.stop is None:
                whole.add(p.run_number)
            else:
                intervals.setdefault(p.run_number, []).append((p.start, p.stop))
    entries = []
    for run in sorted(runs, key=lambda r: r.number):
        if run.number in whole:
            continue
        excluded = merge(intervals.get(run.number, []))
        livetime = None
        if run.ended is not None:
            duration = (run.ended - run.started).total_seconds()
            # an interval may reach outside the run's span (flags are checked against no
            # time axis): livetime is never below zero
            livetime = round(max(0.0, duration - sum(b - a for a, b in excluded)), 6)
        entries.append(
            {"run": run.number, "livetime": livetime, "excluded": [[a, b] for a, b in excluded]}
        )
    return entries


def merge(intervals: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Overlapping or touching intervals made one, in order: so that time flagged by two
    flags is taken out once.

    >>> merge([(0.8, 1.2), (0.1, 0.2), (1.0, 1.5)])
    [(0.1, 0.2), (0.8, 1.5)]
    """
    merged: list[tuple[float, float]] = []
    for start, stop in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], stop))
        else:
            merged.append((start, stop))
    return merged


def content_hash(content: dict[str, Any]) -> str:
    """The sha256 of content as canonical JSON (sorted keys, no spaces): equal content, equal
    hash, on any machine."""
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


def canonical_query(query: Any) -> dict[str, Any]:
    """A query in one spelling, so that the same question gives the same hash: times in ISO
    UTC, metadata conditions (keywords or ``where``) under ``where`` by key, a single value
    not in a list, the default state left out.

    >>> canonical_query({"gas": ["Ar"], "since": "2026-11-01"})
    {'since': '2026-11-01T00:00:00+00:00', 'where': {'gas': 'Ar'}}
    """
    if not isinstance(query, dict) or not all(isinstance(k, str) for k in query):
        raise InvalidArgument(
            f"query={query!r}: a query is a dict of la.runs.search keywords, e.g. "
            "{'gas': 'Ar', 'since': '2026-11-01'}"
        )
    found: dict[str, Any] = {}
    where: dict[str, Any] = {}
    for key, value in query.items():
        if key == "where":
            if value is None:
                continue
            if not isinstance(value, dict):
                raise InvalidArgument(f"query['where'] maps metadata keys to values, not {value!r}")
            where.update(value)
        elif key in ("since", "until"):
            when = parse_when(value, key)
            if when is not None:
                found[key] = when.isoformat()
        elif key == "state":
            if value not in (*RUN_STATES, None):
                raise InvalidArgument(f"state={value!r}: a run is one of {', '.join(RUN_STATES)}")
            if value != "closed":  # the default
                found[key] = value
        elif key in _SEARCH:
            if value is not None:
                found[key] = value
        else:
            where[key] = value
    if where:
        found["where"] = {k: _one_spelling(v) for k, v in sorted(where.items())}
    try:
        json.dumps(found, allow_nan=False)
    except (TypeError, ValueError):
        raise InvalidArgument(
            f"query={query!r}: its values must be text, numbers or booleans (or lists of them)"
        ) from None
    return found


def search_arguments(query: dict[str, Any]) -> dict[str, Any]:
    """The keywords of ``la.runs.search`` that a canonical query stands for."""
    return {k: v for k, v in query.items() if k != "where"} | {"where": query.get("where")}


def _one_spelling(value: Any) -> Any:
    if isinstance(value, (list, tuple, set, frozenset)):
        if isinstance(value, (set, frozenset)):
            values = sorted(value, key=repr)
        else:
            values = list(dict.fromkeys(value))
        return values[0] if len(values) == 1 else values
    return value
