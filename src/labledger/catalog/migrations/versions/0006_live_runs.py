"""Live runs: a run's states as reached, whether it is complete and why not, its structure.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # plain ADD COLUMN (a batch would copy the table, which SQLite's foreign keys refuse)
    op.add_column(
        "runs", sa.Column("complete", sa.Boolean(), nullable=False, server_default=sa.true())
    )
    op.add_column("runs", sa.Column("reason", sa.Text(), nullable=True))
    op.add_column("runs", sa.Column("structure", sa.String(length=64), nullable=True))
    op.create_table(
        "run_states",
        sa.Column("run_id", sa.String(length=36), sa.ForeignKey("runs.id"), primary_key=True),
        sa.Column("state", sa.String(length=16), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("run_states")
    for column in ("structure", "reason", "complete"):
        op.drop_column("runs", column)
