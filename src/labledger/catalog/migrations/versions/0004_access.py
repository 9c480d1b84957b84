"""Access: a project for every run; users, their roles per project, API keys, the audit log.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as runs:  # batch: SQLite cannot add an indexed column
        runs.add_column(
            sa.Column("project", sa.String(length=64), nullable=False, server_default="default")
        )
        runs.create_index("ix_runs_project_newest", ["project", "state", "started", "number"])
    op.create_table(
        "users",
        sa.Column("name", sa.String(length=64), primary_key=True),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
    )
    op.create_table(
        "memberships",
        sa.Column("user", sa.String(length=64), sa.ForeignKey("users.name"), primary_key=True),
        sa.Column("project", sa.String(length=64), primary_key=True),
        sa.Column("role", sa.String(length=16), nullable=False),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(length=16), primary_key=True),
        sa.Column("user", sa.String(length=64), sa.ForeignKey("users.name"), nullable=False),
        sa.Column("secret_sha256", sa.String(length=64), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked", sa.DateTime(timezone=True), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
    )
    op.create_index("ix_api_keys_user", "api_keys", ["user"])
    op.create_table(
        "audit",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("who", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
    )
    op.create_index("ix_audit_at", "audit", ["at"])


def downgrade() -> None:
    op.drop_table("audit")
    op.drop_table("api_keys")
    op.drop_table("memberships")
    op.drop_table("users")
    with op.batch_alter_table("runs") as runs:
        runs.drop_index("ix_runs_project_newest")
        runs.drop_column("project")
