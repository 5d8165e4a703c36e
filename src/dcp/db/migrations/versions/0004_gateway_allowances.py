"""gateway allowances: a renter's per-process /v1 allowance, and the allowance a usage row drew from

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 19:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import dcp.db.types

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "gateway_allowances",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("reference", sa.String(length=100), nullable=False),
        sa.Column("renter_id", sa.Integer(), nullable=False),
        sa.Column("process", sa.String(length=40), nullable=False),
        sa.Column("held_halala", sa.BigInteger(), nullable=False),
        sa.Column("spent_halala", sa.BigInteger(), nullable=False),
        sa.Column("opened_at", dcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("renewed_at", dcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("closed_at", dcp.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("closed_reason", sa.String(length=100), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gateway_allowances")),
        sa.UniqueConstraint("reference", name=op.f("uq_gateway_allowances_reference")),
    )
    op.create_index(
        op.f("ix_gateway_allowances_renter_id"), "gateway_allowances", ["renter_id"], unique=False
    )
    op.create_index(
        op.f("ix_gateway_allowances_renewed_at"), "gateway_allowances", ["renewed_at"], unique=False
    )
    with op.batch_alter_table("gateway_requests") as batch:
        batch.add_column(sa.Column("allowance_id", sa.BigInteger(), nullable=True))
        batch.create_index(op.f("ix_gateway_requests_allowance_id"), ["allowance_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("gateway_requests") as batch:
        batch.drop_index(op.f("ix_gateway_requests_allowance_id"))
        batch.drop_column("allowance_id")
    op.drop_index(op.f("ix_gateway_allowances_renewed_at"), table_name="gateway_allowances")
    op.drop_index(op.f("ix_gateway_allowances_renter_id"), table_name="gateway_allowances")
    op.drop_table("gateway_allowances")
