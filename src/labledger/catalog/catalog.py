"""The catalog: what runs exist, what they hold, and the queries users make of them.

The hot paths (the newest run, a run by number, a metadata search) are single indexed queries
that stay in the low milliseconds with 100,000 runs, on SQLite and PostgreSQL (bench/).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, exists, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from labledger.catalog import database
from labledger.catalog.schema import ChannelRow, MetadataRow, RunRow, SettingRow, SourceRow
from labledger.errors import ArchiveExists, RunConflict

CLOSED = "closed"
RUN_STATES = ("created", "started", "stopped", "closed", "aborted")
_MAX_KEY = 255


@dataclass
class NewRun:
    """Everything ingest hands the catalog in one transaction to make a run visible."""

    run: RunRow
    sources: list[tuple[SourceRow, list[ChannelRow]]]


class Catalog:
    """The catalog database at ``url`` (``sqlite:///...`` or ``postgresql://...``)."""

    def __init__(self, url: str, engine: Engine):
        self.url = database.normalize_url(url)
        self.engine = engine
        self._session = sessionmaker(engine, expire_on_commit=False)

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
            with catalog._session.begin() as session:
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

    # -- runs ----------------------------------------------------------------------------------

    def newest(self, offset: int = 0) -> RunRow | None:
        """The newest closed run (latest start), or the one ``offset`` places before it."""
        query = (
            select(RunRow)
            .where(RunRow.state == CLOSED)
            .order_by(RunRow.started.desc(), RunRow.number.desc())
            .offset(offset)
            .limit(1)
        )
        with self._session() as session:
            return session.scalars(query).first()

    def by_number(self, number: int) -> RunRow | None:
        with self._session() as session:
            return session.scalars(select(RunRow).where(RunRow.number == number)).first()

    def by_id(self, run_id: str) -> RunRow | None:
        with self._session() as session:
            return session.get(RunRow, run_id)

    def by_numbers(self, numbers: Iterable[int]) -> list[RunRow]:
        with self._session() as session:
            query = select(RunRow).where(RunRow.number.in_(list(numbers))).order_by(RunRow.number)
            return list(session.scalars(query))

    def last(self, n: int) -> list[RunRow]:
        """The closed runs with the ``n`` highest numbers, by number."""
        query = select(RunRow).where(RunRow.state == CLOSED).order_by(RunRow.number.desc()).limit(n)
        with self._session() as session:
            return list(reversed(list(session.scalars(query))))

    def count(self, state: str | None = CLOSED) -> int:
        query = select(func.count()).select_from(RunRow)
        if state is not None:
            query = query.where(RunRow.state == state)
        with self._session() as session:
            return int(session.scalar(query) or 0)

    def iter_runs(self, batch: int = 1000) -> Iterator[RunRow]:
        """Every closed run by number, read a batch at a time."""
        after: int | None = None
        while True:
            query = (
                select(RunRow).where(RunRow.state == CLOSED).order_by(RunRow.number).limit(batch)
            )
            if after is not None:
                query = query.where(RunRow.number > after)
            with self._session() as session:
                rows = list(session.scalars(query))
            yield from rows
            if len(rows) < batch:
                return
            after = rows[-1].number

    def next_number(self) -> int:
        with self._session() as session:
            return int(session.scalar(select(func.max(RunRow.number))) or 0) + 1

    def search(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        source: str | None = None,
        state: str | None = CLOSED,
        where: dict[str, Any] | None = None,
        limit: int | None = None,
    ) -> list[RunRow]:
        """Runs matching every condition, by number.

        ``where`` maps metadata keys to a value (equality) or a list of values (any of them).
        ``source`` is a raw file's name or its sha256.
        """
        query = select(RunRow)
        if state is not None:
            query = query.where(RunRow.state == state)
        if since is not None:
            query = query.where(RunRow.started >= since)
        if until is not None:
            query = query.where(RunRow.started < until)
        if source is not None:
            query = query.where(
                exists().where(
                    SourceRow.run_id == RunRow.id,
                    or_(SourceRow.name == source, SourceRow.sha256 == source),
                )
            )
        for key, wanted in (where or {}).items():
            values = list(wanted) if isinstance(wanted, (list, tuple, set, frozenset)) else [wanted]
            query = query.where(
                exists().where(
                    MetadataRow.run_id == RunRow.id,
                    MetadataRow.key == key,
                    or_(*(_matches(v) for v in values)),
                )
            )
        query = query.order_by(RunRow.number)
        if limit is not None:
            query = query.limit(limit)
        with self._session() as session:
            return list(session.scalars(query))

    # -- what a run holds ----------------------------------------------------------------------

    def sources(self, run_id: str) -> list[SourceRow]:
        with self._session() as session:
            query = select(SourceRow).where(SourceRow.run_id == run_id).order_by(SourceRow.position)
            return list(session.scalars(query))

    def channels(self, run_id: str) -> list[ChannelRow]:
        with self._session() as session:
            query = select(ChannelRow).where(ChannelRow.run_id == run_id).order_by(ChannelRow.id)
            return list(session.scalars(query))

    def channel(self, run_id: str, key: str) -> ChannelRow | None:
        with self._session() as session:
            query = select(ChannelRow).where(ChannelRow.run_id == run_id, ChannelRow.key == key)
            return session.scalars(query).first()

    def channel_keys(self, run_id: str) -> list[str]:
        with self._session() as session:
            query = select(ChannelRow.key).where(ChannelRow.run_id == run_id)
            return list(session.scalars(query.order_by(ChannelRow.id)))

    def source_by_sha256(self, sha256: str) -> tuple[SourceRow, RunRow] | None:
        with self._session() as session:
            query = (
                select(SourceRow, RunRow)
                .join(RunRow, RunRow.id == SourceRow.run_id)
                .where(SourceRow.sha256 == sha256)
            )
            found = session.execute(query).first()
            return None if found is None else (found[0], found[1])

    def has_source_of_size(self, size: int) -> bool:
        """Whether a raw file of exactly this size is kept: if not, a file is surely new and
        need not be hashed twice."""
        with self._session() as session:
            return session.scalar(select(exists().where(SourceRow.size == size))) or False

    # -- writing -------------------------------------------------------------------------------

    def add_run(self, new: NewRun) -> None:
        """Make a run visible: its row, sources, channels and metadata in one transaction.

        Raises :class:`RunConflict` if, meanwhile, another ingest took the run number or kept
        the same bytes.
        """
        try:
            with self._session.begin() as session:
                session.add(new.run)
                session.flush()
                for source, channels in new.sources:
                    source.run_id = new.run.id
                    session.add(source)
                    session.flush()
                    for channel in channels:
                        channel.run_id, channel.source_id = new.run.id, source.id
                    session.add_all(channels)
                session.add_all(metadata_rows(new.run.id, new.run.meta))
        except IntegrityError:
            taken = self.by_number(new.run.number) is not None
            kept = any(self.source_by_sha256(s.sha256) for s, _ in new.sources)
            if not (taken or kept):
                raise
            raise RunConflict(
                f"run {new.run.number}: another ingest took the number, or kept the same "
                "bytes, meanwhile"
            ) from None


def metadata_rows(run_id: str, metadata: dict[str, Any]) -> list[MetadataRow]:
    rows = []
    for key, value in metadata.items():
        if len(key) > _MAX_KEY:
            continue  # kept in the run's metadata document, not indexed for search
        if isinstance(value, str):
            rows.append(MetadataRow(run_id=run_id, key=key, text=value))
        elif isinstance(value, (bool, int, float)):
            rows.append(MetadataRow(run_id=run_id, key=key, number=float(value)))
    return rows


def _matches(value: Any) -> Any:
    if isinstance(value, str):
        return MetadataRow.text == value
    if isinstance(value, (bool, int, float)):
        return MetadataRow.number == float(value)
    raise TypeError(f"metadata values are text, numbers or booleans, not {type(value).__name__}")
