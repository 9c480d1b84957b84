"""The machine's two logs, configuration changes and calibrations, held in memory.

Both are append-only and small (hundreds of entries in a testbed's life), so a reader keeps a
copy and checks with one cheap query that nothing was appended since, rather than asking the
catalog again for every signal it resolves.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from labledger.records import CalibrationRecord, ConfigChangeRecord, RunCatalog


@dataclass
class Snapshot:
    """The logs as of one moment: configuration changes by id, calibrations by name."""

    version: tuple[int, int] = (-1, -1)
    changes: list[ConfigChangeRecord] = field(default_factory=list)
    calibrations: dict[str, list[CalibrationRecord]] = field(default_factory=dict)
    derived: dict[Any, Any] = field(default_factory=dict)  # parsed forms, cached per snapshot


class Logs:
    """An archive's machine logs, refreshed when the catalog holds newer entries."""

    def __init__(self, catalog: RunCatalog):
        self._catalog = catalog
        self._snapshot = Snapshot()
        self._lock = threading.Lock()

    def current(self) -> Snapshot:
        """The logs as the catalog has them now."""
        version = self._catalog.machine_version()
        with self._lock:
            if version != self._snapshot.version:
                calibrations: dict[str, list[CalibrationRecord]] = {}
                for row in self._catalog.calibrations():
                    calibrations.setdefault(row.name, []).append(row)
                self._snapshot = Snapshot(version, self._catalog.config_changes(), calibrations)
            return self._snapshot
