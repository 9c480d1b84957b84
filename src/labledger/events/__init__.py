"""Events: a processing level's event tables, their Parquet files, and queries over them.

``docs/events.md`` has the layout, the query and the measurements.
"""

from labledger.events.query import (
    EventFile,
    EventQuery,
    Events,
    check_parents,
    event_key,
    read_events,
    write_events,
)

__all__ = [
    "EventFile",
    "EventQuery",
    "Events",
    "check_parents",
    "event_key",
    "read_events",
    "write_events",
]
