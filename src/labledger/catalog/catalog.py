"""The catalog: what runs exist, what they hold, and the queries users make of them.

The hot paths (the newest run, a run by number, a metadata search) are single indexed queries
that stay in the low milliseconds with 100,000 runs, on SQLite and PostgreSQL (bench/).

Withdrawn runs (:mod:`.withdrawals`) are left out of every listing (newest, last, count, pages,
searches) and found by number and by id as any run.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import PurePath
from typing import Any

from sqlalchemy import Engine, Select, exists, func, or_, select, text
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

import labledger.catalog.database as database
import labledger.catalog.live as live
import labledger.catalog.withdrawals as withdrawals
from labledger.catalog.quality import bad_whole_run
from labledger.catalog.schema import (
    MAX_KEY,
    CalibrationRow,
    ChannelRow,
    ConfigChangeRow,
    MetadataRow,
    RunRow,
    SettingRow,
    SourceRow,
    as_row,
    calibration_table,
    channel_table,
    config_change_table,
    metadata_rows,
    run_table,
    source_table,
)
from labledger.catalog.withdrawals import withdrawn_run
from labledger.errors import (
    ArchiveExists,
    CatalogUnavailable,
    Conflict,
    InvalidArgument,
    RunConflict,
    first_line,
)
from labledger.ids import batches
from labledger.records import (
    CLOSED,
    RUN_STATES,
    CalibrationRecord,
    ChannelRecord,
    ConfigChangeRecord,
    RunRecord,
    RunStateRecord,
    SourceRecord,
    WithdrawalEntry,
    WithdrawalRecord,
)

QUALITIES = ("good", "bad")
# what one search may ask: each key is a join, each value a comparison (SQLite refuses an
# expression tree deeper than 1000; PostgreSQL plans hundreds of joins for minutes)
MAX_WHERE_KEYS = 16
MAX_WHERE_VALUES = 1000  # per key
MAX_VALUE_CHARS = 4096  # a text value; what is indexed longer than this is found by a prefix
_INT64 = 2**63
_PROBE = 1000  # how far a search looks to tell a selective condition from a broad one
# counts, not newest ids: ids are taken at insert and may commit out of order (PostgreSQL), but
# an append-only log's count grows with every commit
# the distinct keys of run_metadata, each found by a seek in its key index: SQLite and
# PostgreSQL would otherwise read every row of the table (250 keys a NeXus run)
_DISTINCT_KEYS = """
WITH RECURSIVE found(key) AS (
    SELECT min(key) FROM run_metadata
    UNION ALL
    SELECT (SELECT min(key) FROM run_metadata WHERE key > found.key)
    FROM found WHERE found.key IS NOT NULL
)
SELECT key FROM found WHERE key IS NOT NULL LIMIT :most
"""
_MACHINE_VERSION = (
    "SELECT (SELECT count(*) FROM config_changes), (SELECT count(*) FROM calibrations)"
)


@dataclass
class NewRun:
    """Everything ingest hands the catalog in one transaction to make a run visible."""

    run: RunRecord
    sources: list[tuple[SourceRecord, list[ChannelRecord]]]


class Catalog:
    """The catalog database at ``url`` (``sqlite:///...`` or ``postgresql://...``)."""

    def __init__(self, url: str, engine: Engine):
        self.url = database.normalize_url(url)
        self.engine = engine
        self._write = sessionmaker(engine, expire_on_commit=False)
        # reads need no transaction: without BEGIN and ROLLBACK a lookup is one round trip
        self._reader = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._session = sessionmaker(self._reader, expire_on_commit=False)

    @classmethod
    def open(cls, url: str) -> Catalog:
        """Connect to an existing catalog, checking it answers and has this code's schema."""
        engine = database.connect(url)
        try:
            database.check_schema(engine, url)
        except BaseException:
            engine.dispose()
            raise
        return cls(url, engine)

    @classmethod
    def create(cls, url: str, settings: dict[str, Any]) -> Catalog:
        """Create the catalog's tables in an empty database and record the archive's settings."""
        engine = database.connect(url)
        try:
            if not database.is_empty(engine):
                raise ArchiveExists(
                    f"catalog {database.display_url(url)} is not empty; an archive there is "
                    "opened with `labledger.open(URL)`, not created again"
                )
            database.migrate(engine)
            catalog = cls(url, engine)
            with catalog._write.begin() as session:
                session.add_all(SettingRow(key=k, value=v) for k, v in settings.items())
            return catalog
        except BaseException:
            engine.dispose()
            raise

    def close(self) -> None:
        self.engine.dispose()

    @property
    def display_url(self) -> str:
        return database.display_url(self.url)

    def settings(self) -> dict[str, Any]:
        with self._session() as session:
            return {row.key: row.value for row in session.scalars(select(SettingRow))}

    def states(self, run_id: str) -> list[RunStateRecord]:
        """The states live run ``run_id`` reached, in order (none for a run from files)."""
        return live.states(self, run_id)

    def open_runs(self, projects: Collection[str] | None = None) -> list[RunRecord]:
        """The live runs not yet saved whole, newest first."""
        return live.open_runs(self, projects)

    def add_setting(self, key: str, value: Any) -> None:
        """Record a new setting; never overwrites one (a key already there, or taken by
        another writer meanwhile, is a :class:`Conflict`): settings written this way are
        append-only, a new version taking a new key."""
        if not isinstance(key, str) or not 0 < len(key) <= 64:
            raise InvalidArgument(f"setting {str(key)[:80]!r}: a key of 1 to 64 characters")
        with self._writing(f"recording setting {key}"), self._write.begin() as session:
            session.add(SettingRow(key=key, value=value))

    def setting_once(self, key: str, value: Any) -> Any:
        """The archive's setting ``key``, recorded as ``value`` if it has none yet (two
        processes doing so at once agree on the first)."""
        held = self.settings()
        if key in held:
            return held[key]
        try:
            self.add_setting(key, value)
        except Conflict:
            return self.settings()[key]
        return value

    # -- runs ----------------------------------------------------------------------------------

    def newest(self, offset: int = 0, projects: Collection[str] | None = None) -> RunRecord | None:
        """The newest closed run (latest start), or the one ``offset`` places before it; of
        ``projects`` only, if given; withdrawn runs left out."""
        query = (
            _listed(select(RunRow).where(run_table.c.state == CLOSED), projects)
            .order_by(run_table.c.started.desc(), run_table.c.number.desc())
            .offset(offset)
            .limit(1)
        )
        with self._session() as session:
            return session.scalars(query).first()

    def by_number(self, number: int) -> RunRecord | None:
        with self._session() as session:
            return session.scalars(select(RunRow).where(run_table.c.number == number)).first()

    def by_id(self, run_id: str) -> RunRecord | None:
        with self._session() as session:
            return session.get(RunRow, run_id)

    def by_ids(self, run_ids: Iterable[str]) -> list[RunRecord]:
        """The runs of these ids (those that exist), in a few queries."""
        found: list[RunRecord] = []
        with self._session() as session:
            for batch in batches(run_ids):
                found += session.scalars(select(RunRow).where(run_table.c.id.in_(batch)))
        return found

    def by_numbers(self, numbers: Iterable[int]) -> list[RunRecord]:
        """The runs of these numbers (those that exist), by number, in a few queries."""
        found: list[RunRecord] = []
        with self._session() as session:
            for batch in batches(numbers):
                found += session.scalars(select(RunRow).where(run_table.c.number.in_(batch)))
        return sorted(found, key=lambda r: r.number)

    def last(self, n: int, projects: Collection[str] | None = None) -> list[RunRecord]:
        """The closed runs with the ``n`` highest numbers, by number (not withdrawn)."""
        query = _listed(select(RunRow).where(run_table.c.state == CLOSED), projects)
        query = query.order_by(run_table.c.number.desc()).limit(n)
        with self._session() as session:
            return list(reversed(list(session.scalars(query))))

    def count(self, state: str | None = CLOSED, projects: Collection[str] | None = None) -> int:
        """How many runs (of ``state``, of ``projects``) there are, withdrawn ones left out."""
        query = _listed(select(func.count()).select_from(RunRow), projects)
        if state is not None:
            query = query.where(run_table.c.state == state)
        with self._session() as session:
            return int(session.scalar(query) or 0)

    def iter_runs(
        self, batch: int = 1000, state: str | None = CLOSED, *, withdrawn: bool = False
    ) -> Iterator[RunRecord]:
        """Every closed run (every run, with ``state=None``) by number, a batch at a time;
        withdrawn ones too only with ``withdrawn=True``."""
        after: int | None = None
        while True:
            query = select(RunRow).order_by(run_table.c.number).limit(batch)
            if not withdrawn:
                query = query.where(~withdrawn_run())
            if state is not None:
                query = query.where(run_table.c.state == state)
            if after is not None:
                query = query.where(run_table.c.number > after)
            with self._session() as session:
                rows = list(session.scalars(query))
            yield from rows
            if len(rows) < batch:
                return
            after = rows[-1].number

    def page(
        self, after: int | None, limit: int, projects: Collection[str] | None = None
    ) -> list[RunRecord]:
        """Up to ``limit`` closed runs numbered above ``after``, by number: a page of a
        listing that stays right while runs are added."""
        query = _listed(select(RunRow).where(run_table.c.state == CLOSED), projects)
        if after is not None:
            query = query.where(run_table.c.number > after)
        with self._session() as session:
            return list(session.scalars(query.order_by(run_table.c.number).limit(limit)))

    def run_at(self, store_prefix: str) -> RunRecord | None:
        """The run whose objects are below ``store_prefix``, if one is recorded."""
        with self._session() as session:
            query = select(RunRow).where(run_table.c.store_prefix == store_prefix)
            return session.scalars(query).first()

    def raw_bytes(self) -> int:
        """The bytes of every raw file kept."""
        with self._session() as session:
            return int(session.scalar(select(func.sum(source_table.c.size))) or 0)

    def projects(self) -> set[str]:
        """The projects that have runs."""
        with self._session() as session:
            return set(session.scalars(select(run_table.c.project).distinct()))

    def next_number(self) -> int:
        with self._session() as session:
            return int(session.scalar(select(func.max(run_table.c.number))) or 0) + 1

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
    ) -> list[RunRecord]:
        """Runs matching every condition, by number (of ``projects`` only, if given).

        ``where`` maps metadata keys to a value (equality) or a list of values (any of them).
        ``source`` is a raw file's name or its sha256. ``quality`` "good" keeps runs that no
        active flag of severity bad covers whole, "bad" those that one does. ``withdrawn``
        False leaves out withdrawn runs, True keeps only them, None takes both.
        """
        if state is not None and state not in RUN_STATES:
            raise InvalidArgument(f"state={state!r}: a run is one of {', '.join(RUN_STATES)}")
        if quality is not None and quality not in QUALITIES:
            raise InvalidArgument(
                f"quality={quality!r}: search for quality 'good' (no active bad flag on the "
                "whole run) or 'bad' (one), or leave it out for both"
            )
        if limit is not None and limit < 0:
            raise InvalidArgument(f"limit={limit}: must not be negative")
        runs, sources = run_table.c, source_table.c
        query = _of(select(RunRow), projects)
        if state is not None:
            query = query.where(runs.state == state)
        if since is not None:
            query = query.where(runs.started >= since)
        if until is not None:
            query = query.where(runs.started < until)
        if source is not None:
            if len(source) > MAX_VALUE_CHARS or "\x00" in source:
                raise InvalidArgument(
                    f"source: a file name or sha256, at most {MAX_VALUE_CHARS} characters, "
                    "without NUL"
                )
            named = or_(sources.name == source, sources.sha256 == source)
            query = query.where(runs.id.in_(select(sources.run_id).where(named)))
        if quality is not None:  # one correlated EXISTS per run, on the indexed run number
            flagged = bad_whole_run(run_table)
            query = query.where(flagged if quality == "bad" else ~flagged)
        if withdrawn is not None:  # the same, on the run id
            query = query.where(withdrawn_run() if withdrawn else ~withdrawn_run())
        conditions = _conditions(where or {})
        with self._session() as session:
            if conditions:
                query = query.where(runs.id.in_(self._matching(session, conditions, since, until)))
            query = query.order_by(runs.number)
            if limit is not None:
                query = query.limit(limit)
            return list(session.scalars(query))

    def _matching(
        self,
        session: Session,
        conditions: list[tuple[str, list[Any]]],
        since: datetime | None,
        until: datetime | None,
    ) -> Select[tuple[str]]:
        """The ids of runs meeting every metadata condition. The condition matching fewest runs
        drives (one index range, bounded by the times); the others are checked run by run.
        Database planners cannot tell ``gas="Ar"`` (most runs) from ``sample="S-1234"`` (one)."""

        # Core table expressions: the ORM's instrumented attributes cost milliseconds here
        meta = MetadataRow.__table__

        def rows(table: Any, key: str, values: list[Any]) -> list[Any]:
            found = [table.c.key == key, _matches(table, values)]
            if since is not None:
                found.append(table.c.started >= since)
            if until is not None:
                found.append(table.c.started < until)
            return found

        if len(conditions) > 1:  # how many runs each matches, up to _PROBE: one round trip
            probes = [
                select(func.count())
                .select_from(select(meta.c.run_id).where(*rows(meta, *c)).limit(_PROBE).subquery())
                .scalar_subquery()
                for c in conditions
            ]
            counts = session.execute(select(*probes)).one()
            conditions = [c for _, c in sorted(zip(counts, conditions), key=lambda p: p[0])]
        driver = _alias(0)
        ids = select(driver.c.run_id).where(*rows(driver, *conditions[0]))
        for i, (key, values) in enumerate(conditions[1:], start=1):
            other = _alias(i)
            ids = ids.where(
                exists().where(other.c.run_id == driver.c.run_id, *rows(other, key, values))
            )
        return ids

    def known_keys(self, keys: Collection[str]) -> set[str]:
        """Those of ``keys`` that some run has as a searchable metadata key (one index lookup
        each): a search on any other key finds nothing whatever its value."""
        meta = MetadataRow.__table__.c
        asked = [k for k in keys if isinstance(k, str) and 0 < len(k) <= MAX_KEY]
        if not asked:
            return set()
        with self._session() as session:
            query = select(meta.key).where(meta.key.in_(asked)).group_by(meta.key)
            return set(session.scalars(query))

    def metadata_keys(self, most: int = 100_000) -> list[str]:
        """The searchable metadata keys runs have, sorted, the first ``most`` of them: one
        index seek per distinct key (a loose index scan), not a pass over every run's rows."""
        with self._session() as session:
            return list(session.scalars(text(_DISTINCT_KEYS), {"most": most}))

    # -- what a run holds ----------------------------------------------------------------------

    def sources(self, run_id: str) -> list[SourceRecord]:
        with self._session() as session:
            query = (
                select(SourceRow)
                .where(source_table.c.run_id == run_id)
                .order_by(source_table.c.position)
            )
            return list(session.scalars(query))

    def channels(self, run_id: str) -> list[ChannelRecord]:
        with self._session() as session:
            query = (
                select(ChannelRow)
                .where(channel_table.c.run_id == run_id)
                .order_by(channel_table.c.id)
            )
            return list(session.scalars(query))

    def channels_of(self, run_ids: Iterable[str]) -> dict[str, list[ChannelRecord]]:
        """The channels of many runs in one query, by run id."""
        found: dict[str, list[ChannelRecord]] = {run_id: [] for run_id in run_ids}
        with self._session() as session:
            query = (
                select(ChannelRow)
                .where(channel_table.c.run_id.in_(list(found)))
                .order_by(channel_table.c.id)
            )
            for row in session.scalars(query):
                found[row.run_id].append(row)
        return found

    def sources_from(self, paths: Iterable[str]) -> list[tuple[str, int, datetime]]:
        """(original path, size, modified) of the raw files kept from ``paths`` (as ingest
        recorded them): what a drop folder has ingested already. Asked by file name, which
        is indexed, and kept if the whole path is one of ``paths``."""
        wanted = set(paths)
        names = {PurePath(p).name for p in wanted}
        s = source_table.c
        found: list[tuple[str, int, datetime]] = []
        with self._session() as session:
            for batch in batches(names):
                query = select(s.original_path, s.size, s.modified).where(s.name.in_(batch))
                found += [(p, n, m) for p, n, m in session.execute(query) if p in wanted]
        return found

    def sources_of(self, run_ids: Iterable[str]) -> list[SourceRecord]:
        """The raw files of many runs, in a few queries."""
        found: list[SourceRecord] = []
        with self._session() as session:
            for batch in batches(run_ids):
                found += session.scalars(select(SourceRow).where(source_table.c.run_id.in_(batch)))
        return found

    def source_hashes(self, run_ids: Iterable[str]) -> dict[str, list[dict[str, str]]]:
        """The name, sha256 and store key of each raw file of many runs, by run id: only those
        columns, for the keys of products (a source's structure tree is large to decode)."""
        found: dict[str, list[dict[str, str]]] = {run_id: [] for run_id in run_ids}
        columns = (
            source_table.c.run_id,
            source_table.c.name,
            source_table.c.sha256,
            source_table.c.store_key,
        )
        with self._session() as session:
            for batch in batches(found):
                query = (
                    select(*columns)
                    .where(source_table.c.run_id.in_(batch))
                    .order_by(source_table.c.position)
                )
                for run_id, name, sha256, key in session.execute(query):
                    found[run_id].append({"name": name, "sha256": sha256, "key": key})
        return found

    def source_by_sha256(self, sha256: str) -> tuple[SourceRecord, RunRecord] | None:
        with self._session() as session:
            query = (
                select(SourceRow, RunRow)
                .join(RunRow, run_table.c.id == source_table.c.run_id)
                .where(source_table.c.sha256 == sha256)
            )
            found = session.execute(query).first()
            return None if found is None else (found[0], found[1])

    def has_source_of_size(self, size: int) -> bool:
        """Whether a raw file of exactly this size is kept: if not, a file is surely new and
        need not be hashed twice."""
        with self._session() as session:
            return session.scalar(select(exists().where(source_table.c.size == size))) or False

    # -- writing -------------------------------------------------------------------------------

    def add_run(self, new: NewRun) -> None:
        """Make a run visible: its row, sources, channels and metadata in one transaction.

        Raises :class:`RunConflict` if, meanwhile, another ingest took the run number or kept
        the same bytes.
        """
        # fresh rows each try: the database numbers sources and channels, and a try rolled
        # back leaves the numbers it was given on the rows it flushed (on SQLite another writer
        # may take them meanwhile); as_row copies a record's fields but those (init=False) ones
        sources = [(as_row(s), [as_row(c) for c in channels]) for s, channels in new.sources]
        run = as_row(new.run)
        try:
            with self._write.begin() as session:
                # the configuration in force is whatever the log holds as the run becomes visible
                run.config_version = session.scalar(select(func.max(config_change_table.c.id)))
                session.add(run)
                session.flush()
                for source, channels in sources:
                    source.run_id = run.id
                    session.add(source)
                    session.flush()
                    for channel in channels:
                        channel.run_id, channel.source_id = run.id, source.id
                    session.add_all(channels)
                session.add_all(metadata_rows(run))
            new.run.config_version = run.config_version
        except OperationalError as exc:
            raise CatalogUnavailable(
                f"catalog {self.display_url} failed while recording run {new.run.number} "
                f"({first_line(exc.orig or exc)})"
            ) from None
        except IntegrityError:
            taken = self.by_number(new.run.number) is not None
            kept = any(self.source_by_sha256(s.sha256) for s, _ in new.sources)
            if not (taken or kept):
                raise
            raise RunConflict(
                f"run {new.run.number}: another ingest took the number, or kept the same "
                "bytes, meanwhile"
            ) from None

    # -- withdrawn runs: an append-only log (withdrawals.py) ------------------------------------

    def withdrawals(
        self, run_ids: Iterable[str] | None = None, *, active_only: bool = False
    ) -> list[WithdrawalEntry]:
        """Every withdrawal (of ``run_ids``), oldest first, each with the restoration that
        undid it (None: the run is withdrawn); ``active_only``: only those not undone."""
        return withdrawals.history(self, run_ids=run_ids, active_only=active_only)

    def append_withdrawal(self, row: WithdrawalRecord, number: int) -> WithdrawalRecord:
        """Record the withdrawal or restoration ``row`` of run ``number``, checked against the
        run's history in the same transaction (see :func:`.withdrawals.append`)."""
        return withdrawals.append(self, row, number=number)

    # -- the machine's logs: configuration changes and calibrations, append-only ---------------

    def machine_version(self) -> tuple[int, int]:
        """How many configuration changes and calibrations are recorded: a cheap check that the
        logs a reader holds in memory are still the whole story."""
        # asked before every signal read: plain SQL skips the ORM's 0.3 ms (a fifth of the read)
        with self._reader.connect() as conn:
            config, calibration = conn.exec_driver_sql(_MACHINE_VERSION).one()
        return int(config or 0), int(calibration or 0)

    def config_changes(self) -> list[ConfigChangeRecord]:
        with self._session() as session:
            return list(session.scalars(select(ConfigChangeRow).order_by(config_change_table.c.id)))

    def calibrations(self) -> list[CalibrationRecord]:
        with self._session() as session:
            query = select(CalibrationRow).order_by(
                calibration_table.c.name, calibration_table.c.version
            )
            return list(session.scalars(query))

    def append_config_change(self, row: ConfigChangeRecord, expected: int) -> ConfigChangeRecord:
        """Append ``row`` to the configuration log if its newest entry is still ``expected``
        (the version the change was checked against); else refuse, so that a change checked
        against an old history is never recorded."""
        row = as_row(row)
        row.after = expected
        try:
            with self._writing("recording a configuration change"), self._write.begin() as session:
                newest = session.scalar(select(func.max(config_change_table.c.id))) or 0
                if newest != expected:
                    raise Conflict(f"now version {newest}")
                session.add(row)
        except Conflict:
            raise Conflict(
                "the configuration changed meanwhile; check the change against it and try again"
            ) from None
        return row

    def append_calibration(self, row: CalibrationRecord) -> CalibrationRecord:
        """Append a calibration as the next version of its name."""
        row = as_row(row)
        with self._writing(f"recording calibration {row.name}"), self._write.begin() as session:
            newest = session.scalar(
                select(func.max(calibration_table.c.version)).where(
                    calibration_table.c.name == row.name
                )
            )
            row.version = int(newest or 0) + 1
            session.add(row)
        return row

    # -- sessions for the catalog's other query modules (products.py, quality.py) --------------

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A session for reads, without a transaction."""
        with self._session() as session:
            yield session

    @contextmanager
    def transaction(self, what: str) -> Iterator[Session]:
        """A session whose work commits at the end, all or nothing; database failures become
        labledger errors that say ``what`` was being done."""
        with self._writing(what), self._write.begin() as session:
            yield session

    @contextmanager
    def _writing(self, what: str) -> Iterator[None]:
        try:
            yield
        except OperationalError as exc:
            raise CatalogUnavailable(
                f"catalog {self.display_url} failed while {what} ({first_line(exc.orig or exc)})"
            ) from None
        except IntegrityError:
            raise Conflict(f"another writer was {what} at the same moment; try again") from None
        except DataError as exc:  # a value the column cannot hold (PostgreSQL checks lengths)
            raise InvalidArgument(f"{what}: {first_line(exc.orig or exc)}") from None


def _of(query: Any, projects: Collection[str] | None) -> Any:
    """``query`` narrowed to runs of ``projects`` (None: all)."""
    return query if projects is None else query.where(run_table.c.project.in_(list(projects)))


def _listed(query: Any, projects: Collection[str] | None) -> Any:
    """``query`` narrowed to the runs a listing shows: of ``projects``, not withdrawn."""
    return _of(query, projects).where(~withdrawn_run())


@functools.cache
def _alias(i: int) -> Any:
    """The i-th alias of the metadata table in a search (made once: aliasing is not free)."""
    return MetadataRow.__table__.alias(f"m{i}")


def _conditions(where: dict[str, Any]) -> list[tuple[str, list[Any]]]:
    """``where`` checked against what a search may ask (the same locally and through a
    server): its keys, how many values each, and what each value may be."""
    if not isinstance(where, dict):
        raise InvalidArgument("where: a mapping of metadata key -> value or list of values")
    if len(where) > MAX_WHERE_KEYS:
        raise InvalidArgument(
            f"where: {len(where)} keys; a search takes at most {MAX_WHERE_KEYS} (search with "
            "the most selective ones, then filter the runs it gives)"
        )
    conditions = []
    for key, wanted in where.items():
        if not isinstance(key, str) or not key or len(key) > MAX_KEY or "\x00" in key:
            raise InvalidArgument(
                f"where: key {str(key)[:40]!r}: 1 to {MAX_KEY} characters without NUL "
                "(longer keys are kept in a run's metadata, not indexed for search)"
            )
        conditions.append((key, _values(key, wanted)))
    return conditions


def _values(key: str, wanted: Any) -> list[Any]:
    values = list(wanted) if isinstance(wanted, (list, tuple, set, frozenset)) else [wanted]
    if not values:  # "any of none" is nothing: refused, rather than quietly matching nothing
        raise InvalidArgument(f"where[{key!r}]: an empty list of values; give at least one")
    if len(values) > MAX_WHERE_VALUES:
        raise InvalidArgument(
            f"where[{key!r}]: {len(values)} values; at most {MAX_WHERE_VALUES} per key"
        )
    for value in values:
        if isinstance(value, str):
            if len(value) > MAX_VALUE_CHARS or "\x00" in value:
                raise InvalidArgument(
                    f"where[{key!r}]: a text value of at most {MAX_VALUE_CHARS} characters, "
                    "without NUL"
                )
        elif isinstance(value, int):  # bool too
            if not -_INT64 <= value < _INT64:
                raise InvalidArgument(f"where[{key!r}]: integers between -2**63 and 2**63-1")
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise InvalidArgument(f"where[{key!r}]: {value} matches nothing; give a number")
        else:
            raise InvalidArgument(
                f"where[{key!r}]: metadata values are text, numbers or booleans, not "
                f"{type(value).__name__}"
            )
    return values


def _matches(table: Any, values: list[Any]) -> Any:
    """Any of ``values``: IN lists, not a chain of ORs (a chain is as deep as it is long)."""
    texts = [v for v in values if isinstance(v, str)]
    numbers = sorted({float(v) for v in values if not isinstance(v, str)})
    found = [table.c.text.in_(texts)] if texts else []
    found += [table.c.number.in_(numbers)] if numbers else []
    return or_(*found)
