"""placement ranking: providers' stored reliability, indexed; an index in the order jobs are claimed

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 19:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("providers") as batch:
        batch.add_column(sa.Column("reliability", sa.Integer(), nullable=False, server_default="100"))
    op.create_index(op.f("ix_providers_reliability"), "providers", ["reliability"], unique=False)
    op.create_index("ix_jobs_claim", "jobs", ["status", sa.text("priority DESC"), "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_jobs_claim", table_name="jobs")
    op.drop_index(op.f("ix_providers_reliability"), table_name="providers")
    with op.batch_alter_table("providers") as batch:
        batch.drop_column("reliability")
