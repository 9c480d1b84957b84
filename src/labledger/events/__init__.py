"""Processing levels and event tables: one row per physics event, keyed, linked to its parents.

- :mod:`~labledger.events.table`: :class:`Events`, a level's table as a step gives it, checked
  and normalised;
- :mod:`~labledger.events.files`: the Parquet files, one per run and product, and the check of
  the parents they name;
- :mod:`~labledger.events.query`: :class:`EventQuery`, a level's events joined to their
  ancestors, planned for DuckDB (:mod:`~labledger.events.engine`).

This part stands alone, below lineage: it imports no lineage module. The lineage framework hands
it the store and a way to list a level's current files, and records what it writes in the
catalog. ``docs/events.md`` has the layout, the query and the measurements.
"""

from labledger.events.files import EventFile, check_parents, event_key, read_events, write_events
from labledger.events.query import EventQuery
from labledger.events.table import Events

__all__ = [
    "EventFile",
    "EventQuery",
    "Events",
    "check_parents",
    "event_key",
    "read_events",
    "write_events",
]
