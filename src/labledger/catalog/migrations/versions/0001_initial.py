"""The first catalog: runs, their sources, channels and searchable metadata; settings.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "settings",
        sa.Column("key", sa.String(length=64), primary_key=True),
        sa.Column("value", sa.JSON(), nullable=False),
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.String(length=36), primary_key=True),
        sa.Column("number", sa.BigInteger(), nullable=False, unique=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("started", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("store_prefix", sa.Text(), nullable=False),
        sa.Column("n_channels", sa.Integer(), nullable=False),
        sa.Column("data_bytes", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_runs_newest", "runs", ["state", "started", "number"])
    op.create_table(
        "run_metadata",
        sa.Column("run_id", sa.String(length=36), sa.ForeignKey("runs.id"), primary_key=True),
        sa.Column("key", sa.String(length=255), primary_key=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("number", sa.Float(), nullable=True),
        sa.Column("started", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_run_metadata_text", "run_metadata", ["key", "text", "started", "run_id"])
    op.create_index(
        "ix_run_metadata_number", "run_metadata", ["key", "number", "started", "run_id"]
    )
    op.create_table(
        "sources",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(length=36), sa.ForeignKey("runs.id"), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("format", sa.String(length=32), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False, unique=True),
        sa.Column("store_key", sa.Text(), nullable=False),
        sa.Column("original_path", sa.Text(), nullable=False),
        sa.Column("modified", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ingested", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ingested_by", sa.Text(), nullable=False),
        sa.Column("tree", sa.JSON(), nullable=False),
        sa.Column("problems", sa.JSON(), nullable=False),
    )
    op.create_index("ix_sources_name", "sources", ["name"])
    op.create_index("ix_sources_run_id", "sources", ["run_id"])
    op.create_index("ix_sources_size", "sources", ["size"])
    op.create_table(
        "channels",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(length=36), sa.ForeignKey("runs.id"), nullable=False),
        sa.Column("source_id", sa.Integer(), sa.ForeignKey("sources.id"), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("store_path", sa.Text(), nullable=False),
        sa.Column("shape", sa.JSON(), nullable=False),
        sa.Column("dtype", sa.Text(), nullable=False),
        sa.Column("attrs", sa.JSON(), nullable=False),
        sa.Column("axes", sa.JSON(), nullable=False),
        sa.UniqueConstraint("run_id", "key", name="uq_channels_run_key"),
    )
    op.create_index("ix_channels_run_id", "channels", ["run_id"])


def downgrade() -> None:
    for table in ("channels", "sources", "run_metadata", "runs", "settings"):
        op.drop_table(table)
