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
from collections.abc import Mapping
from typing import Any

import labledger.acquire.mirror as mirror
from labledger.acquire.site import LiveSite
from labledger.catalog import Catalog
from labledger.errors import CatalogUnavailable, Conflict, first_line
from labledger.live import Acquisition, WriterConflict
from labledger.records import ENDED

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
        lease: float = 30.0,
    ) -> None:
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
        configuration in force."""
        super().prepare()
        mirror.record(self.catalog, self.client, self.keys)

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
