"""Withdrawals: the append-only log of runs withdrawn (ingested by mistake) and restored.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "withdrawals",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("run_id", sa.String(length=36), sa.ForeignKey("runs.id"), nullable=False),
        sa.Column("run_number", sa.BigInteger(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column(
            "target", sa.Integer(), sa.ForeignKey("withdrawals.id"), nullable=True, unique=True
        ),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("author", sa.Text(), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("run_id", "seq", name="uq_withdrawals_run_seq"),
    )
    op.create_index("ix_withdrawals_run_number", "withdrawals", ["run_number"])


def downgrade() -> None:
    op.drop_index("ix_withdrawals_run_number", table_name="withdrawals")
    op.drop_table("withdrawals")
