"""link presence: which link a provider's daemon holds, and when its last one closed

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 20:15:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import dcp.db.types

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("providers") as batch:
        batch.add_column(sa.Column("link_id", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("link_lost_at", dcp.db.types.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("providers") as batch:
        batch.drop_column("link_lost_at")
        batch.drop_column("link_id")
