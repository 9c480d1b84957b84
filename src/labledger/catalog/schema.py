"""The catalog's tables. Every change to them is an Alembic migration under ``migrations/``.

A run is a row in ``runs``; its raw files are rows in ``sources`` (sha256 unique: the same bytes
are never ingested twice); its arrays are rows in ``channels``; its metadata is a JSON document on
the run and, for search, one row per key in ``run_metadata``, indexed by key and value.

The testbed's configuration history (``config_changes``) and its calibrations (``calibrations``)
are logs: rows are appended, never updated. A run records the newest configuration change it was
ingested under (``runs.config_version``), so later changes cannot alter it by accident.

Products (``products``, with their inputs in ``product_inputs``) are what steps computed, keyed by
the hash of what went in; a failed computation is a row too, with its error and no output. Data
quality flags (``flags``, their runs and intervals in ``flag_periods``) and good-run lists
(``good_run_lists``) are append-only: a withdrawal or a correction is a new row naming the one it
replaces. So is the log of runs withdrawn and restored (``withdrawals``): a run ingested by
mistake is withdrawn with a reason, never deleted, and a restoration is a row that names the
withdrawal it undoes.

Who may do what through a server: ``users``, their role in each project (``memberships``), their
API keys (``api_keys``: a hash, never the key; scopes; an expiry) and the ``audit`` log of every
write made through it. A run belongs to one project (``runs.project``).
"""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from labledger.ids import DEFAULT_PROJECT
from labledger.records import (
    CalibrationRecord,
    ChannelRecord,
    ConfigChangeRecord,
    FlagPeriodRecord,
    FlagRecord,
    GoodRunListRecord,
    ProductInputRecord,
    ProductRecord,
    RunRecord,
    RunStateRecord,
    SourceRecord,
    WithdrawalRecord,
)

if TYPE_CHECKING:
    from _typeshed import DataclassInstance


class UTCDateTime(TypeDecorator[datetime]):
    """Times are stored in UTC and come back timezone-aware, on SQLite (which keeps no zone)
    as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"a time without a zone reached the catalog: {value}")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime}


class SettingRow(Base):
    """Archive-wide settings, such as where the store is, so a catalog URL alone opens it."""

    __tablename__ = "settings"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)


metadata = Base.metadata
mapper = Base.registry
R = TypeVar("R", bound="DataclassInstance")

# The records of labledger.records stay plain: each is mapped through a subclass, its row, so a
# record made where no catalog is (a client reading a server) stays a plain dataclass when the
# catalog is imported later in the same process. A query gives rows, which are records; a record
# is written as its row (as_row).


def _time(name: str, **kwargs: Any) -> Column[datetime]:
    return Column(name, UTCDateTime(), **kwargs)


MAX_KEY = 255  # characters of a metadata key that is indexed for search

run_table = Table(
    "runs",
    metadata,
    Column("id", String(36), primary_key=True),  # UUIDv7
    Column("number", BigInteger, unique=True, nullable=False),
    Column("state", String(16), nullable=False),
    _time("started", nullable=False),
    _time("ended"),
    _time("created", nullable=False),
    Column("metadata", JSON, nullable=False),
    Column("store_prefix", Text, nullable=False),
    Column("n_channels", Integer, nullable=False),
    Column("data_bytes", BigInteger, nullable=False),
    Column("config_version", Integer),  # None: no configuration yet
    Column("project", String(64), nullable=False, default=DEFAULT_PROJECT),
    Column("complete", Boolean, nullable=False, default=True),
    Column("reason", Text),
    Column("structure", String(64)),
    Index("ix_runs_newest", "state", "started", "number"),
    # a reader's newest run, whatever the planner knows of the projects' sizes
    Index("ix_runs_project_newest", "project", "state", "started", "number"),
)


class RunRow(RunRecord):
    """A RunRecord as the catalog holds it (mapped onto its table)."""


mapper.map_imperatively(RunRow, run_table, properties={"meta": run_table.c.metadata})

# a live run's states in the order reached: one row a state, forward only (docs/live.md)
run_state_table = Table(
    "run_states",
    metadata,
    Column("run_id", ForeignKey("runs.id"), primary_key=True),
    Column("state", String(16), primary_key=True),
    _time("at", nullable=False),
    Column("reason", Text),
)


class RunStateRow(RunStateRecord):
    """A RunStateRecord as the catalog holds it (mapped onto its table)."""


mapper.map_imperatively(RunStateRow, run_state_table)

source_table = Table(
    "sources",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", ForeignKey("runs.id"), index=True, nullable=False),
    Column("position", Integer, nullable=False),
    Column("name", Text, index=True, nullable=False),
    Column("size", BigInteger, index=True, nullable=False),
    Column("format", String(32), nullable=False),
    Column("sha256", String(64), unique=True, nullable=False),
    Column("store_key", Text, nullable=False),
    Column("original_path", Text, nullable=False),
    _time("modified", nullable=False),
    _time("ingested", nullable=False),
    Column("ingested_by", Text, nullable=False),
    Column("tree", JSON, nullable=False),
    Column("problems", JSON, nullable=False),
)


class SourceRow(SourceRecord):
    """A SourceRecord as the catalog holds it (mapped onto its table)."""


mapper.map_imperatively(SourceRow, source_table)

channel_table = Table(
    "channels",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", ForeignKey("runs.id"), index=True, nullable=False),
    Column("source_id", ForeignKey("sources.id"), nullable=False),
    Column("key", Text, nullable=False),
    Column("store_path", Text, nullable=False),
    Column("shape", JSON, nullable=False),
    Column("dtype", Text, nullable=False),  # NumPy's spelling; JSON fields for a compound
    Column("attrs", JSON, nullable=False),
    Column("axes", JSON, nullable=False),
    UniqueConstraint("run_id", "key", name="uq_channels_run_key"),
)


class ChannelRow(ChannelRecord):
    """A ChannelRecord as the catalog holds it (mapped onto its table)."""


mapper.map_imperatively(ChannelRow, channel_table)


class MetadataRow(Base):
    """One searchable metadata entry of a run: text in ``text``, numbers and booleans in
    ``number``. The run's start time is repeated here so that "this value, since then" is one
    index range, whatever the other conditions of a search; the indexes cover the run id, so
    that range is read from the index alone."""

    __tablename__ = "run_metadata"
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id"), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    text: Mapped[str | None] = mapped_column(Text)
    number: Mapped[float | None] = mapped_column(Float)
    started: Mapped[datetime] = mapped_column()

    __table_args__ = (
        Index("ix_run_metadata_text", "key", "text", "started", "run_id"),
        Index("ix_run_metadata_number", "key", "number", "started", "run_id"),
    )


config_change_table = Table(
    "config_changes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),
    # the version it was checked against: unique, so of two changes checked against the same
    # history only the first is recorded, on PostgreSQL as on SQLite
    Column("after", Integer, unique=True, nullable=False),
    Column("payload", JSON, nullable=False),
    Column("from_run", BigInteger),
    _time("from_time"),
    Column("author", Text, nullable=False),
    Column("reason", Text, nullable=False),
    _time("created", nullable=False),
)


class ConfigChangeRow(ConfigChangeRecord):
    """A ConfigChangeRecord as the catalog holds it (mapped onto its table)."""


mapper.map_imperatively(ConfigChangeRow, config_change_table)

calibration_table = Table(
    "calibrations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False),
    Column("version", Integer, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("params", JSON, nullable=False),
    Column("unit", Text, nullable=False),
    Column("from_run", BigInteger),
    _time("from_time"),
    Column("author", Text, nullable=False),
    Column("reason", Text, nullable=False),
    _time("created", nullable=False),
    UniqueConstraint("name", "version", name="uq_calibrations_name_version"),
)


class CalibrationRow(CalibrationRecord):
    """A CalibrationRecord as the catalog holds it (mapped onto its table)."""


mapper.map_imperatively(CalibrationRow, calibration_table)

product_table = Table(
    "products",
    metadata,
    Column("id", String(36), primary_key=True),  # UUIDv7
    Column("key", String(64), nullable=False),
    Column("prekey", String(64), index=True, nullable=False),
    Column("slot", String(64), nullable=False),
    Column("step", Text, index=True, nullable=False),
    Column("step_version", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("kind", String(16), nullable=False),  # value, array, dataset, table, events, set
    Column("run_number", BigInteger, index=True),
    Column("level", Integer),  # events only
    Column("store_prefix", Text),
    Column("output_hash", String(64)),
    Column("value", JSON, nullable=True),  # small outputs inline, else a summary
    Column("provenance", JSON, nullable=False),
    Column("error", Text),
    _time("created", nullable=False),
    Column("author", Text, nullable=False),
    Index("ix_products_slot", "slot", "created"),
    Index("ix_products_level", "level", "run_number"),
    # one product per key: of two writers computing the same thing, the second adopts the first
    Index(
        "uq_products_key",
        "key",
        unique=True,
        sqlite_where=text("status = 'complete'"),
        postgresql_where=text("status = 'complete'"),
    ),
)


class ProductRow(ProductRecord):
    """A ProductRecord as the catalog holds it (mapped onto its table)."""


mapper.map_imperatively(ProductRow, product_table)

product_input_table = Table(
    "product_inputs",
    metadata,
    Column("product_id", ForeignKey("products.id"), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("ref", String(36), index=True, nullable=False),  # a run id or a product id
    Column("run_number", BigInteger),
)


class ProductInputRow(ProductInputRecord):
    """A ProductInputRecord as the catalog holds it (mapped onto its table)."""


mapper.map_imperatively(ProductInputRow, product_input_table)

flag_table = Table(
    "flags",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("action", String(16), nullable=False),
    Column("target", ForeignKey("flags.id"), unique=True),
    Column("subsystem", String(64)),
    Column("severity", String(16)),
    Column("reason", Text, nullable=False),
    Column("author", Text, nullable=False),
    _time("created", nullable=False),
)


class FlagRow(FlagRecord):
    """A FlagRecord as the catalog holds it (mapped onto its table)."""


mapper.map_imperatively(FlagRow, flag_table)

flag_period_table = Table(
    "flag_periods",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("flag_id", ForeignKey("flags.id"), index=True, nullable=False),
    Column("run_id", ForeignKey("runs.id"), nullable=False),
    Column("run_number", BigInteger, index=True, nullable=False),
    Column("start", Float),
    Column("stop", Float),
)


class FlagPeriodRow(FlagPeriodRecord):
    """A FlagPeriodRecord as the catalog holds it (mapped onto its table)."""


mapper.map_imperatively(FlagPeriodRow, flag_period_table)

good_run_list_table = Table(
    "good_run_lists",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False),
    Column("version", Integer, nullable=False),
    Column("query", JSON, nullable=False),
    Column("require", JSON, nullable=False),
    Column("runs", JSON, nullable=False),
    Column("livetime", Float),
    Column("flags_seen", Integer, nullable=False),  # flag rows recorded when it was made
    Column("hash", String(64), nullable=False),
    Column("author", Text, nullable=False),
    Column("reason", Text, nullable=False),
    _time("created", nullable=False),
    UniqueConstraint("name", "version", name="uq_good_run_lists_name_version"),
)


class GoodRunListRow(GoodRunListRecord):
    """A GoodRunListRecord as the catalog holds it (mapped onto its table)."""


mapper.map_imperatively(GoodRunListRow, good_run_list_table)

withdrawal_table = Table(
    "withdrawals",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("action", String(16), nullable=False),
    Column("run_id", ForeignKey("runs.id"), nullable=False),
    Column("run_number", BigInteger, index=True, nullable=False),
    Column("seq", Integer, nullable=False),
    Column("target", ForeignKey("withdrawals.id"), unique=True),
    Column("reason", Text, nullable=False),
    Column("author", Text, nullable=False),
    _time("created", nullable=False),
    UniqueConstraint("run_id", "seq", name="uq_withdrawals_run_seq"),
)


class WithdrawalRow(WithdrawalRecord):
    """A WithdrawalRecord as the catalog holds it (mapped onto its table)."""


mapper.map_imperatively(WithdrawalRow, withdrawal_table)


class UserRow(Base):
    __tablename__ = "users"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    created: Mapped[datetime] = mapped_column()
    created_by: Mapped[str] = mapped_column(Text)


class MembershipRow(Base):
    __tablename__ = "memberships"
    user: Mapped[str] = mapped_column(ForeignKey("users.name"), primary_key=True)
    project: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))  # reader, writer, admin


class ApiKeyRow(Base):
    __tablename__ = "api_keys"
    id: Mapped[str] = mapped_column(String(16), primary_key=True)  # the key's public part
    user: Mapped[str] = mapped_column(ForeignKey("users.name"), index=True)
    secret_sha256: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[list[str]] = mapped_column(JSON)
    created: Mapped[datetime] = mapped_column()
    expires: Mapped[datetime | None] = mapped_column()
    revoked: Mapped[datetime | None] = mapped_column()
    note: Mapped[str] = mapped_column(Text, default="")


class AuditRow(Base):
    __tablename__ = "audit"
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    at: Mapped[datetime] = mapped_column(index=True)
    who: Mapped[str] = mapped_column(Text)
    action: Mapped[str] = mapped_column(Text)
    target: Mapped[str] = mapped_column(Text)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)


def metadata_rows(run: RunRecord) -> list[MetadataRow]:
    """The search index of a run's metadata: one row per key, text or number."""
    rows = []
    for key, value in run.meta.items():
        if len(key) > MAX_KEY:
            continue  # kept in the run's metadata document, not indexed for search
        entry = MetadataRow(run_id=run.id, key=key, started=run.started)
        if isinstance(value, str):
            entry.text = value
        elif isinstance(value, (bool, int, float)):
            entry.number = float(value)
        else:
            continue
        rows.append(entry)
    return rows


ROWS: dict[type, type] = {
    RunRecord: RunRow,
    RunStateRecord: RunStateRow,
    SourceRecord: SourceRow,
    ChannelRecord: ChannelRow,
    ConfigChangeRecord: ConfigChangeRow,
    CalibrationRecord: CalibrationRow,
    ProductRecord: ProductRow,
    ProductInputRecord: ProductInputRow,
    FlagRecord: FlagRow,
    FlagPeriodRecord: FlagPeriodRow,
    GoodRunListRecord: GoodRunListRow,
    WithdrawalRecord: WithdrawalRow,
}


def as_row(record: R) -> R:
    """``record`` as the catalog's row: itself if it is one, else a new row with its fields
    (those the database numbers only if the record holds them already)."""
    row_class = ROWS.get(type(record))
    if row_class is None:
        return record
    row = row_class(**{f.name: getattr(record, f.name) for f in fields(record) if f.init})
    for f in fields(record):
        if not f.init and f.name in vars(record):
            setattr(row, f.name, getattr(record, f.name))
    return row
