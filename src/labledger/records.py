"""What the catalog records, as plain dataclasses: runs, their raw files and channels, the
configuration and calibration logs, products and their inputs, flags, good-run lists and
withdrawals.

They know nothing of a database. The catalog maps them onto its tables (``catalog/schema.py``,
SQLAlchemy's imperative mapping), so that a query gives these very classes; the server sends
them as JSON and the remote client makes them again (:mod:`labledger.wire`) without loading
SQLAlchemy. An ``id`` the database numbers is not a constructor argument (nor shown in a
record's repr): it is there once the record is stored (or read back).

>>> from datetime import UTC, datetime
>>> run = RunRecord(id="0190", number=1234, state=CLOSED, started=datetime(2026, 5, 1, tzinfo=UTC),
...                 ended=None, created=datetime(2026, 5, 1, tzinfo=UTC), meta={"gas": "Ar"},
...                 store_prefix="runs/0190", n_channels=3, data_bytes=1024)
>>> run.number, run.project, run.config_version
(1234, 'default', None)
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from labledger.ids import DEFAULT_PROJECT

__all__ = [
    "ACTIVE",
    "CLOSED",
    "COMPLETE",
    "ENDED",
    "FAILED",
    "FLAG",
    "LIVE",
    "MAX_RUN_NUMBER",
    "NUMBER_KEY",
    "OLDER_THAN_MINUTES",
    "RESTORE",
    "RUN_STATES",
    "SUPERSEDED",
    "WITHDRAW",
    "WITHDRAWN",
    "CalibrationRecord",
    "ChannelRecord",
    "ConfigChangeRecord",
    "FlagEntry",
    "FlagPeriodRecord",
    "FlagRecord",
    "GoodRunListRecord",
    "ProductInputRecord",
    "ProductRecord",
    "RunCatalog",
    "RunRecord",
    "RunStateRecord",
    "SourceRecord",
    "WithdrawalEntry",
    "WithdrawalRecord",
]

CLOSED = "closed"
# a live run moves forward through the first five (docs/live.md), or ends aborted or failed; an
# ingested run is closed from the start. The catalog says closed once the data are stored.
RUN_STATES = ("created", "prepared", "started", "stopped", "closed", "aborted", "failed")
ENDED = ("closed", "aborted", "failed")
LIVE = "live"  # the format of a live run's one source: the saver's manifest of its segments
MAX_RUN_NUMBER = 2**63 - 1  # runs.number is a BIGINT
WITHDRAW, RESTORE = "withdraw", "restore"  # the actions of the withdrawal log
COMPLETE, FAILED = "complete", "failed"  # a product's status
FLAG = "flag"  # a flag's action (its withdrawal's is WITHDRAW)
ACTIVE, SUPERSEDED, WITHDRAWN = "active", "superseded", "withdrawn"  # a flag's status
OLDER_THAN_MINUTES = 60.0  # a check repairs only what an ingest left this long ago
NUMBER_KEY = "labledger:number"  # the run metadata saying where the run's number came from


# eq=False: a record is itself, as a row of the ORM is (and stays hashable)
@dataclass(eq=False, kw_only=True)
class RunRecord:
    """A run: ``id`` a UUIDv7, ``meta`` its searchable metadata, stamped with the
    configuration version it was ingested under (a live run: prepared under).

    ``complete``: every stream sealed and durably stored, and every channel its structure
    says is always saved there (or waived); ``reason`` says why not, or why a live run was
    aborted or failed. ``structure``: the kind of run it was checked against, if any."""

    id: str
    number: int
    state: str
    started: datetime
    ended: datetime | None
    created: datetime
    meta: dict[str, Any]
    store_prefix: str
    n_channels: int
    data_bytes: int
    config_version: int | None = None  # None: no configuration yet
    project: str = DEFAULT_PROJECT
    complete: bool = True
    reason: str | None = None
    structure: str | None = None


@dataclass(eq=False, kw_only=True)
class RunStateRecord:
    """A live run's state reached ``at``, with the reason given (aborted, failed, incomplete)."""

    run_id: str
    state: str
    at: datetime
    reason: str | None = None


@dataclass(eq=False, kw_only=True)
class SourceRecord:
    """A raw file of a run, kept in the store under ``store_key``."""

    id: int = field(init=False, repr=False)
    run_id: str
    position: int
    name: str
    size: int
    format: str
    sha256: str
    store_key: str
    original_path: str
    modified: datetime
    ingested: datetime
    ingested_by: str
    tree: dict[str, Any]
    problems: list[str]


@dataclass(eq=False, kw_only=True)
class ChannelRecord:
    """An array of a run: ``key`` the source's own path to it, ``dtype`` NumPy's spelling
    (JSON fields for a compound). Its run and source are set when the run is recorded."""

    id: int = field(init=False, repr=False)
    run_id: str = field(init=False, repr=False)
    source_id: int = field(init=False, repr=False)
    key: str
    store_path: str
    shape: list[int]
    dtype: str
    attrs: dict[str, Any]
    axes: list[dict[str, Any]]


@dataclass(eq=False, kw_only=True)
class ConfigChangeRecord:
    """An entry of the configuration log: a testbed description (``kind`` "description") or
    a re-wiring of signals ("wiring"), in force from a run number and/or a time. Its id is the
    configuration version; ``after`` the version it was checked against."""

    id: int = field(init=False, repr=False)
    kind: str
    after: int = field(init=False, repr=False)
    payload: dict[str, Any]
    from_run: int | None
    from_time: datetime | None
    author: str
    reason: str
    created: datetime


@dataclass(eq=False, kw_only=True)
class CalibrationRecord:
    """One version of a named calibration, in force from a run number and/or a time."""

    id: int = field(init=False, repr=False)
    name: str
    version: int
    kind: str
    params: dict[str, Any]
    unit: str
    from_run: int | None
    from_time: datetime | None
    author: str
    reason: str
    created: datetime


@dataclass(eq=False, kw_only=True)
class ProductRecord:
    """A computation of a step: the product it made (``status`` "complete") or its failure.

    ``slot`` names what was computed whatever the versions of its inputs, ``prekey`` adds the
    versions and hashes known before running, ``key`` what the step was seen to read."""

    id: str
    key: str
    prekey: str
    slot: str
    step: str
    step_version: str
    status: str
    kind: str  # value, array, dataset, table, events, set
    run_number: int | None
    level: int | None  # events only
    store_prefix: str | None
    output_hash: str | None
    value: Any  # small outputs inline, else a summary
    provenance: dict[str, Any]
    error: str | None
    created: datetime
    author: str


@dataclass(eq=False, kw_only=True)
class ProductInputRecord:
    """One input of a product: a run (``kind`` "run") or another product ("product")."""

    product_id: str
    position: int
    kind: str
    ref: str  # a run id or a product id
    run_number: int | None


@dataclass(eq=False, kw_only=True)
class FlagRecord:
    """A data-quality flag (``action`` "flag"), or the withdrawal of one ("withdraw"); with a
    ``target`` it supersedes that flag."""

    id: int = field(init=False, repr=False)
    action: str
    target: int | None
    subsystem: str | None
    severity: str | None
    reason: str
    author: str
    created: datetime


@dataclass(eq=False, kw_only=True)
class FlagPeriodRecord:
    """A run, or an interval of it (``start``/``stop`` in s on its time axis), that a flag
    covers."""

    id: int = field(init=False, repr=False)
    flag_id: int = field(init=False, repr=False)
    run_id: str
    run_number: int
    start: float | None
    stop: float | None


@dataclass(eq=False, kw_only=True)
class GoodRunListRecord:
    """One version of a named good-run list: the runs that passed with their livetime, the
    query, subsystems and flags it was made from; ``hash`` identifies its content."""

    id: int = field(init=False, repr=False)
    name: str
    version: int
    query: dict[str, Any]
    require: list[str]
    runs: list[dict[str, Any]]
    livetime: float | None
    flags_seen: int  # flag rows recorded when it was made
    hash: str
    author: str
    reason: str
    created: datetime


@dataclass(eq=False, kw_only=True)
class WithdrawalRecord:
    """A run withdrawn (``action`` "withdraw") or restored ("restore": ``target`` names the
    withdrawal it undoes). ``seq`` numbers a run's entries from 1."""

    id: int = field(init=False, repr=False)
    action: str
    run_id: str
    run_number: int
    seq: int
    target: int | None
    reason: str
    author: str
    created: datetime


@dataclass
class FlagEntry:
    """A flag as the catalog holds it: its row, its periods, and the row that replaced it (a
    superseding flag or a withdrawal), if any."""

    row: FlagRecord
    periods: list[FlagPeriodRecord] = field(default_factory=list)
    replaced_by: FlagRecord | None = None

    @property
    def status(self) -> str:
        if self.replaced_by is None:
            return ACTIVE
        return WITHDRAWN if self.replaced_by.action == WITHDRAW else SUPERSEDED


# a withdrawal, and the restoration that undid it (None: still in force)
WithdrawalEntry = tuple[WithdrawalRecord, WithdrawalRecord | None]


class RunCatalog(Protocol):
    """What runs, withdrawals and the machine's logs ask of a catalog. The SQL catalog
    (:class:`labledger.catalog.Catalog`) answers, and so does a server
    (:class:`labledger.client.remote.RemoteCatalog`): the code above is the same for both."""

    @property
    def display_url(self) -> str: ...

    def close(self) -> None: ...

    # runs
    def newest(
        self, offset: int = 0, projects: Collection[str] | None = None
    ) -> RunRecord | None: ...

    def by_number(self, number: int) -> RunRecord | None: ...

    def by_id(self, run_id: str) -> RunRecord | None: ...

    def by_numbers(self, numbers: Iterable[int]) -> list[RunRecord]: ...

    def last(self, n: int, projects: Collection[str] | None = None) -> list[RunRecord]: ...

    def count(self, state: str | None = CLOSED, projects: Collection[str] | None = None) -> int: ...

    def iter_runs(self, batch: int = 1000) -> Iterator[RunRecord]: ...

    def search(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        source: str | None = None,
        state: str | None = CLOSED,
        where: dict[str, Any] | None = None,
        limit: int | None = None,
        quality: str | None = None,
        projects: Collection[str] | None = None,
        withdrawn: bool | None = False,
    ) -> list[RunRecord]: ...

    # live runs
    def states(self, run_id: str) -> list[RunStateRecord]: ...

    def open_runs(self, projects: Collection[str] | None = None) -> list[RunRecord]: ...

    # what a run holds
    def sources(self, run_id: str) -> list[SourceRecord]: ...

    def sources_of(self, run_ids: Iterable[str]) -> list[SourceRecord]: ...

    def channels(self, run_id: str) -> list[ChannelRecord]: ...

    def channels_of(self, run_ids: Iterable[str]) -> dict[str, list[ChannelRecord]]: ...

    # withdrawn runs
    def withdrawals(
        self, run_ids: Iterable[str] | None = None, *, active_only: bool = False
    ) -> list[WithdrawalEntry]: ...

    def append_withdrawal(self, row: WithdrawalRecord, number: int) -> WithdrawalRecord: ...

    # the machine's logs
    def machine_version(self) -> tuple[int, int]: ...

    def config_changes(self) -> list[ConfigChangeRecord]: ...

    def calibrations(self) -> list[CalibrationRecord]: ...

    def append_config_change(
        self, row: ConfigChangeRecord, expected: int
    ) -> ConfigChangeRecord: ...

    def append_calibration(self, row: CalibrationRecord) -> CalibrationRecord: ...
