"""What lineage needs from the archive it records in, named here so that lineage depends on
these parts and not on the archive that wires them (labledger.archive)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from labledger.catalog import Catalog
from labledger.lineage.product import ProductRecords
from labledger.machine.logs import Logs
from labledger.quality import GoodRunList
from labledger.quality.recorded import Flags
from labledger.runs import Runs
from labledger.store import Store
from labledger.withdrawals import Withdrawals


class Home(Protocol):
    """The archive's parts that computing, reusing and judging products read: the catalog and
    store, the runs, the machine's logs, the flags, withdrawals and good-run lists."""

    @property
    def catalog(self) -> Catalog: ...

    @property
    def store(self) -> Store: ...

    @property
    def runs(self) -> Runs: ...

    @property
    def path(self) -> Path | None: ...

    @property
    def logs(self) -> Logs: ...

    @property
    def flags(self) -> Flags: ...

    @property
    def products(self) -> ProductRecords: ...

    @property
    def withdrawals(self) -> Withdrawals: ...

    def good_runs(
        self,
        name: str,
        *,
        query: dict[str, Any] | None = None,
        require: Sequence[str] | str = (),
        version: int | None = None,
        reason: str = "",
    ) -> GoodRunList: ...
