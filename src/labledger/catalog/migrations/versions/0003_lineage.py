"""Lineage and quality: products and their inputs, data-quality flags, good-run lists.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COMPLETE = sa.text("status = 'complete'")


def upgrade() -> None:
    op.create_table(
        "products",
        sa.Column("id", sa.String(length=36), primary_key=True),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("prekey", sa.String(length=64), nullable=False),
        sa.Column("slot", sa.String(length=64), nullable=False),
        sa.Column("step", sa.Text(), nullable=False),
        sa.Column("step_version", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("run_number", sa.BigInteger(), nullable=True),
        sa.Column("level", sa.Integer(), nullable=True),
        sa.Column("store_prefix", sa.Text(), nullable=True),
        sa.Column("output_hash", sa.String(length=64), nullable=True),
        sa.Column("value", sa.JSON(), nullable=True),
        sa.Column("provenance", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("author", sa.Text(), nullable=False),
    )
    op.create_index("ix_products_prekey", "products", ["prekey"])
    op.create_index("ix_products_step", "products", ["step"])
    op.create_index("ix_products_run_number", "products", ["run_number"])
    op.create_index("ix_products_slot", "products", ["slot", "created"])
    op.create_index("ix_products_level", "products", ["level", "run_number"])
    op.create_index(
        "uq_products_key",
        "products",
        ["key"],
        unique=True,
        sqlite_where=_COMPLETE,
        postgresql_where=_COMPLETE,
    )
    op.create_table(
        "product_inputs",
        sa.Column(
            "product_id", sa.String(length=36), sa.ForeignKey("products.id"), primary_key=True
        ),
        sa.Column("position", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("ref", sa.String(length=36), nullable=False),
        sa.Column("run_number", sa.BigInteger(), nullable=True),
    )
    op.create_index("ix_product_inputs_ref", "product_inputs", ["ref"])
    op.create_table(
        "flags",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("target", sa.Integer(), sa.ForeignKey("flags.id"), nullable=True, unique=True),
        sa.Column("subsystem", sa.String(length=64), nullable=True),
        sa.Column("severity", sa.String(length=16), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("author", sa.Text(), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "flag_periods",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("flag_id", sa.Integer(), sa.ForeignKey("flags.id"), nullable=False),
        sa.Column("run_id", sa.String(length=36), sa.ForeignKey("runs.id"), nullable=False),
        sa.Column("run_number", sa.BigInteger(), nullable=False),
        sa.Column("start", sa.Float(), nullable=True),
        sa.Column("stop", sa.Float(), nullable=True),
    )
    op.create_index("ix_flag_periods_flag_id", "flag_periods", ["flag_id"])
    op.create_index("ix_flag_periods_run_number", "flag_periods", ["run_number"])
    op.create_table(
        "good_run_lists",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("query", sa.JSON(), nullable=False),
        sa.Column("require", sa.JSON(), nullable=False),
        sa.Column("runs", sa.JSON(), nullable=False),
        sa.Column("livetime", sa.Float(), nullable=True),
        sa.Column("flags_seen", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("author", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("name", "version", name="uq_good_run_lists_name_version"),
    )


def downgrade() -> None:
    op.drop_table("good_run_lists")
    op.drop_table("flag_periods")
    op.drop_table("flags")
    op.drop_table("product_inputs")
    op.drop_table("products")
