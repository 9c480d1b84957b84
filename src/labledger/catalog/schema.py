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

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from labledger.ids import DEFAULT_PROJECT


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


class RunRow(Base):
    __tablename__ = "runs"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # UUIDv7
    number: Mapped[int] = mapped_column(BigInteger, unique=True)
    state: Mapped[str] = mapped_column(String(16))
    started: Mapped[datetime] = mapped_column()
    ended: Mapped[datetime | None] = mapped_column()
    created: Mapped[datetime] = mapped_column()
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON)
    store_prefix: Mapped[str] = mapped_column(Text)
    n_channels: Mapped[int] = mapped_column(Integer)
    data_bytes: Mapped[int] = mapped_column(BigInteger)
    config_version: Mapped[int | None] = mapped_column(Integer)  # None: no configuration yet
    project: Mapped[str] = mapped_column(String(64), default=DEFAULT_PROJECT)

    __table_args__ = (
        Index("ix_runs_newest", "state", "started", "number"),
        # a reader's newest run, whatever the planner knows of the projects' sizes
        Index("ix_runs_project_newest", "project", "state", "started", "number"),
    )


class SourceRow(Base):
    __tablename__ = "sources"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(Text, index=True)
    size: Mapped[int] = mapped_column(BigInteger, index=True)
    format: Mapped[str] = mapped_column(String(32))
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    store_key: Mapped[str] = mapped_column(Text)
    original_path: Mapped[str] = mapped_column(Text)
    modified: Mapped[datetime] = mapped_column()
    ingested: Mapped[datetime] = mapped_column()
    ingested_by: Mapped[str] = mapped_column(Text)
    tree: Mapped[dict[str, Any]] = mapped_column(JSON)
    problems: Mapped[list[str]] = mapped_column(JSON)


class ChannelRow(Base):
    __tablename__ = "channels"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id"), index=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id"))
    key: Mapped[str] = mapped_column(Text)
    store_path: Mapped[str] = mapped_column(Text)
    shape: Mapped[list[int]] = mapped_column(JSON)
    dtype: Mapped[str] = mapped_column(Text)  # NumPy's spelling; JSON fields for a compound
    attrs: Mapped[dict[str, Any]] = mapped_column(JSON)
    axes: Mapped[list[dict[str, Any]]] = mapped_column(JSON)

    __table_args__ = (UniqueConstraint("run_id", "key", name="uq_channels_run_key"),)


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


class ConfigChangeRow(Base):
    """One entry of the configuration log: a testbed description (``kind`` "description") or a
    re-wiring of signals ("wiring"), in force from a run number and/or a time. Its id is the
    configuration version."""

    __tablename__ = "config_changes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))
    # the version it was checked against: unique, so of two changes checked against the same
    # history only the first is recorded, on PostgreSQL as on SQLite
    after: Mapped[int] = mapped_column(Integer, unique=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    from_run: Mapped[int | None] = mapped_column(BigInteger)
    from_time: Mapped[datetime | None] = mapped_column()
    author: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)
    created: Mapped[datetime] = mapped_column()


class CalibrationRow(Base):
    """One version of a named calibration, in force from a run number and/or a time."""

    __tablename__ = "calibrations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128))
    version: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    unit: Mapped[str] = mapped_column(Text)
    from_run: Mapped[int | None] = mapped_column(BigInteger)
    from_time: Mapped[datetime | None] = mapped_column()
    author: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)
    created: Mapped[datetime] = mapped_column()

    __table_args__ = (UniqueConstraint("name", "version", name="uq_calibrations_name_version"),)


class ProductRow(Base):
    """A computation of a step: the product it made (``status`` "complete") or its failure.

    ``slot`` names what was computed (step, version, parameters, which inputs) whatever their
    versions, so a recomputation lands in the same slot and supersedes; ``prekey`` adds the
    versions and content hashes known before running; ``key`` adds what the step was seen to read
    (signals and the calibrations they were read under). Equal key, same product.
    """

    __tablename__ = "products"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # UUIDv7
    key: Mapped[str] = mapped_column(String(64))
    prekey: Mapped[str] = mapped_column(String(64), index=True)
    slot: Mapped[str] = mapped_column(String(64))
    step: Mapped[str] = mapped_column(Text, index=True)
    step_version: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(16))  # value, array, dataset, table, events, set
    run_number: Mapped[int | None] = mapped_column(BigInteger, index=True)
    level: Mapped[int | None] = mapped_column(Integer)  # events only
    store_prefix: Mapped[str | None] = mapped_column(Text)
    output_hash: Mapped[str | None] = mapped_column(String(64))
    value: Mapped[Any] = mapped_column(JSON, nullable=True)  # small outputs inline, else a summary
    provenance: Mapped[dict[str, Any]] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    created: Mapped[datetime] = mapped_column()
    author: Mapped[str] = mapped_column(Text)

    __table_args__ = (
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


class ProductInputRow(Base):
    """One input of a product: a run (``kind`` "run") or another product ("product")."""

    __tablename__ = "product_inputs"
    product_id: Mapped[str] = mapped_column(ForeignKey("products.id"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    ref: Mapped[str] = mapped_column(String(36), index=True)  # a run id or a product id
    run_number: Mapped[int | None] = mapped_column(BigInteger)


class FlagRow(Base):
    """A data-quality flag (``action`` "flag"), or the withdrawal of one ("withdraw"). A flag
    with a ``target`` supersedes that flag; a flag is superseded or withdrawn at most once."""

    __tablename__ = "flags"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    action: Mapped[str] = mapped_column(String(16))
    target: Mapped[int | None] = mapped_column(ForeignKey("flags.id"), unique=True)
    subsystem: Mapped[str | None] = mapped_column(String(64))
    severity: Mapped[str | None] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    author: Mapped[str] = mapped_column(Text)
    created: Mapped[datetime] = mapped_column()


class FlagPeriodRow(Base):
    """A run, or an interval of it (``start``/``stop`` in s on the run's time axis), that a flag
    covers."""

    __tablename__ = "flag_periods"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    flag_id: Mapped[int] = mapped_column(ForeignKey("flags.id"), index=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id"))
    run_number: Mapped[int] = mapped_column(BigInteger, index=True)
    start: Mapped[float | None] = mapped_column(Float)
    stop: Mapped[float | None] = mapped_column(Float)


class GoodRunListRow(Base):
    """One version of a named good-run list: the runs that passed, with their livetime, and the
    query, required subsystems and flags it was made from; ``hash`` identifies its content."""

    __tablename__ = "good_run_lists"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128))
    version: Mapped[int] = mapped_column(Integer)
    query: Mapped[dict[str, Any]] = mapped_column(JSON)
    require: Mapped[list[str]] = mapped_column(JSON)
    runs: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    livetime: Mapped[float | None] = mapped_column(Float)
    flags_seen: Mapped[int] = mapped_column(Integer)  # flag rows recorded when it was made
    hash: Mapped[str] = mapped_column(String(64))
    author: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)
    created: Mapped[datetime] = mapped_column()

    __table_args__ = (UniqueConstraint("name", "version", name="uq_good_run_lists_name_version"),)


class WithdrawalRow(Base):
    """A run withdrawn (``action`` "withdraw"), or restored ("restore": ``target`` names the
    withdrawal it undoes, at most once). ``seq`` numbers a run's rows from 1, unique per run:
    of two writers who both found the run in the same state, only the first is recorded."""

    __tablename__ = "withdrawals"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    action: Mapped[str] = mapped_column(String(16))
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id"))
    run_number: Mapped[int] = mapped_column(BigInteger, index=True)
    seq: Mapped[int] = mapped_column(Integer)
    target: Mapped[int | None] = mapped_column(ForeignKey("withdrawals.id"), unique=True)
    reason: Mapped[str] = mapped_column(Text)
    author: Mapped[str] = mapped_column(Text)
    created: Mapped[datetime] = mapped_column()

    __table_args__ = (UniqueConstraint("run_id", "seq", name="uq_withdrawals_run_seq"),)


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
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True, autoincrement=True)  # fmt: skip
    at: Mapped[datetime] = mapped_column(index=True)
    who: Mapped[str] = mapped_column(Text)
    action: Mapped[str] = mapped_column(Text)
    target: Mapped[str] = mapped_column(Text)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)
