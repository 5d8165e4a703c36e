"""withdrawal idempotency: a provider's retried withdrawal request finds the one it made

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27 11:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("withdrawals") as batch:
        batch.add_column(sa.Column("idempotency_key", sa.String(length=100), nullable=True))
        batch.create_index("uq_withdrawals_idempotency", ["provider_id", "idempotency_key"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("withdrawals") as batch:
        batch.drop_index("uq_withdrawals_idempotency")
        batch.drop_column("idempotency_key")
