"""The DAQ side of an archive: ``la.acquisition(...)`` is a live acquisition under the archive's
prefix that records its run in the catalog when it is prepared (the configuration in force is
stamped then), so that ``la.runs.live()`` and searches see it with its state.

>>> with la.acquisition(run=1271, structure="helicon-shot") as acq:     # doctest: +SKIP
...     ai3 = acq.stream("PXI M6251/ai3", dtype="int16", rate=1e6)
...     acq.start()
...     ai3.write(block)
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping
from typing import Any

import labledger.acquire.mirror as mirror
from labledger.acquire.site import LiveSite
from labledger.catalog import Catalog
from labledger.errors import CatalogUnavailable, Conflict, DataWarning, InvalidArgument, first_line
from labledger.live import Acquisition, WriterConflict
from labledger.machine.configuration import wiring_resolver
from labledger.machine.logs import Logs
from labledger.records import ENDED
from labledger.structures import WAIVED_KEY, Structures, incomplete

log = logging.getLogger(__name__)


class ArchivedAcquisition(Acquisition):
    """An :class:`~labledger.live.Acquisition` whose run is the archive's: refused if the
    archive has a run of that number already, recorded in its catalog once prepared, and each
    state it moves to as it does (the saver records how it ended, with its data)."""

    def __init__(
        self,
        catalog: Catalog,
        site: LiveSite,
        *,
        run: int,
        structure: str,
        metadata: Mapping[str, Any] | None = None,
        waive: Mapping[str, str] | None = None,
        lease: float = 30.0,
    ) -> None:
        metadata = dict(metadata or {})
        # a structure the archive has: the metadata checked, and the waivers, before anything
        # is written (one the archive does not have is recorded by name, unchecked)
        self.kind = Structures(catalog).get(structure) if isinstance(structure, str) else None
        if self.kind is not None:
            self.kind.check_metadata(metadata)
            waivers = self.kind.check_waivers(waive)
            if waivers:
                metadata[WAIVED_KEY] = waivers
        elif waive:
            raise InvalidArgument(
                f"waivers waive what a structure says is always saved, and the archive has no "
                f"structure {structure!r}: add it with `labledger structure add FILE`"
            )
        held = catalog.by_number(run) if isinstance(run, int) and run >= 0 else None
        if held is not None and held.state not in ENDED:
            raise WriterConflict(
                f"run {run} is live ({held.state}): a run has one writer; acquire under another "
                "run number"
            )
        if held is not None:
            raise Conflict(
                f"run {run} is already in the archive ({held.state}, created "
                f"{held.created:%Y-%m-%d %H:%M}): acquire under another run number"
            )
        self.catalog, self.site = catalog, site
        self.missing: list[str] = []  # always-saved names not declared, once prepared
        super().__init__(
            site.client,
            run=run,
            structure=structure,
            metadata=metadata,
            prefix=site.prefix,
            lease=lease,
        )

    def prepare(self) -> None:
        """Fix the run's channels and record the run in the catalog, stamped with the
        configuration in force. A channel the structure always saves that is not declared
        (nor waived) is warned of: the run will close incomplete."""
        super().prepare()
        row, _ = mirror.record(self.catalog, self.client, self.keys)
        if self.kind is not None:
            resolve = wiring_resolver(Logs(self.catalog))(row.number, row.started)
            waived = self.metadata.get(WAIVED_KEY)
            self.missing = self.kind.missing(self.streams, resolve, waived)
            if self.missing:
                warnings.warn(
                    f"run {self.run}: {incomplete(self.missing)} (structure {self.kind.label}): "
                    "it will close incomplete unless waived (la.acquisition(..., waive=...))",
                    DataWarning,
                    stacklevel=2,
                )

    def start(self) -> None:
        super().start()
        self._record()

    def stop(self) -> None:
        super().stop()
        self._record()

    def _record(self) -> None:
        """The state reached, in the catalog now; if the catalog cannot be reached, the saver
        records it when it can (the run goes on: its data are in Redis)."""
        try:
            mirror.record(self.catalog, self.client, self.keys)
        except CatalogUnavailable as exc:
            log.warning("run %s: %s; the saver will record it", self.run, first_line(exc))
