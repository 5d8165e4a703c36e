"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-26 14:47:10.084390
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import dcp.db.types

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "gateway_requests",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("request_id", sa.String(length=80), nullable=False),
        sa.Column("renter_id", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=True),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("endpoint", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("prompt_tokens", sa.Integer(), nullable=False),
        sa.Column("completion_tokens", sa.Integer(), nullable=False),
        sa.Column("cost_halala", sa.BigInteger(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("latency_ms", sa.Integer(), nullable=False),
        sa.Column("error", sa.String(length=500), nullable=True),
        sa.Column("created_at", dcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gateway_requests")),
        sa.UniqueConstraint("request_id", name=op.f("uq_gateway_requests_request_id")),
    )
    with op.batch_alter_table("gateway_requests", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_gateway_requests_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_gateway_requests_provider_id"), ["provider_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_gateway_requests_renter_id"), ["renter_id"], unique=False)

    op.create_table(
        "ledger_accounts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("balance", sa.BigInteger(), nullable=False),
        sa.Column("may_go_negative", sa.Boolean(), nullable=False),
        sa.CheckConstraint("may_go_negative OR balance >= 0", name=op.f("ck_ledger_accounts_non_negative")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_accounts")),
        sa.UniqueConstraint("kind", "owner_id", name="uq_ledger_accounts_kind_owner"),
    )
    op.create_table(
        "ledger_transactions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("reference", sa.String(length=100), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("memo", sa.String(length=500), nullable=True),
        sa.Column("created_at", dcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_transactions")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_ledger_transactions_idempotency_key")),
    )
    with op.batch_alter_table("ledger_transactions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ledger_transactions_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_ledger_transactions_kind"), ["kind"], unique=False)
        batch_op.create_index(batch_op.f("ix_ledger_transactions_reference"), ["reference"], unique=False)

    op.create_table(
        "model_prices",
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("input_per_million_halala", sa.BigInteger(), nullable=False),
        sa.Column("output_per_million_halala", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", dcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("model", name=op.f("pk_model_prices")),
    )
    op.create_table(
        "providers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=True),
        sa.Column("gpu_model", sa.String(length=100), nullable=False),
        sa.Column("os", sa.String(length=16), nullable=False),
        sa.Column("key_digest", sa.String(length=64), nullable=False),
        sa.Column("approval_status", sa.String(length=16), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("created_at", dcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_heartbeat_at", dcp.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("first_heartbeat_at", dcp.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("gpu_name", sa.String(length=100), nullable=True),
        sa.Column("gpu_vram_mib", sa.Integer(), nullable=True),
        sa.Column("gpu_count", sa.Integer(), nullable=False),
        sa.Column("gpu_util_pct", sa.Integer(), nullable=True),
        sa.Column("temp_c", sa.Integer(), nullable=True),
        sa.Column("daemon_version", sa.String(length=32), nullable=True),
        sa.Column("python_version", sa.String(length=32), nullable=True),
        sa.Column("os_info", sa.String(length=200), nullable=True),
        sa.Column("hostname", sa.String(length=200), nullable=True),
        sa.Column("cached_models", sa.JSON(), nullable=False),
        sa.Column("gpus", sa.JSON(), nullable=False),
        sa.Column("prices", sa.JSON(), nullable=False),
        sa.Column("signing_key", sa.String(length=64), nullable=False),
        sa.Column("slots", sa.Integer(), nullable=False),
        sa.Column("serving_models", sa.JSON(), nullable=False),
        sa.Column("serving_ready", sa.Boolean(), nullable=False),
        sa.Column("serving_concurrency", sa.Integer(), nullable=False),
        sa.Column("serving_context", sa.Integer(), nullable=False),
        sa.Column("jobs_completed", sa.Integer(), nullable=False),
        sa.Column("jobs_lost", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_providers")),
        sa.UniqueConstraint("email", name=op.f("uq_providers_email")),
        sa.UniqueConstraint("key_digest", name=op.f("uq_providers_key_digest")),
    )
    with op.batch_alter_table("providers", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_providers_last_heartbeat_at"), ["last_heartbeat_at"], unique=False
        )

    op.create_table(
        "renters",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("organization", sa.String(length=200), nullable=True),
        sa.Column("use_case", sa.String(length=100), nullable=True),
        sa.Column("phone", sa.String(length=20), nullable=True),
        sa.Column("key_digest", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", dcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_renters")),
        sa.UniqueConstraint("email", name=op.f("uq_renters_email")),
        sa.UniqueConstraint("key_digest", name=op.f("uq_renters_key_digest")),
    )
    op.create_table(
        "jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.String(length=40), nullable=False),
        sa.Column("renter_id", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=True),
        sa.Column("requested_provider_id", sa.Integer(), nullable=True),
        sa.Column("job_type", sa.String(length=32), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("container_spec", sa.JSON(), nullable=False),
        sa.Column("gpu_requirements", sa.JSON(), nullable=True),
        sa.Column("min_vram_mib", sa.Integer(), nullable=False),
        sa.Column("gpu_model", sa.String(length=100), nullable=True),
        sa.Column("pricing_class", sa.String(length=16), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("duration_minutes", sa.Integer(), nullable=False),
        sa.Column("max_duration_seconds", sa.Integer(), nullable=False),
        sa.Column("per_minute_halala", sa.Integer(), nullable=False),
        sa.Column("class_percent", sa.Integer(), nullable=False),
        sa.Column("cost_halala", sa.BigInteger(), nullable=False),
        sa.Column("submitted_at", dcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("queue_deadline", dcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("timeout_at", dcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("assigned_at", dcp.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("started_at", dcp.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("run_deadline", dcp.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", dcp.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("excluded_providers", sa.JSON(), nullable=False),
        sa.Column("lease_token", sa.String(length=64), nullable=True),
        sa.Column("lease_expires_at", dcp.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("progress", sa.Integer(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("tokens_generated", sa.Integer(), nullable=True),
        sa.Column("execution_time_ms", sa.BigInteger(), nullable=True),
        sa.Column("idempotency_key", sa.String(length=100), nullable=True),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["provider_id"], ["providers.id"], name=op.f("fk_jobs_provider_id_providers")
        ),
        sa.ForeignKeyConstraint(["renter_id"], ["renters.id"], name=op.f("fk_jobs_renter_id_renters")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
        sa.UniqueConstraint("job_id", name=op.f("uq_jobs_job_id")),
        sa.UniqueConstraint("renter_id", "idempotency_key", name="uq_jobs_renter_idempotency"),
    )
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_jobs_lease_expires_at"), ["lease_expires_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_jobs_provider_id"), ["provider_id"], unique=False)
        batch_op.create_index(
            "ix_jobs_queue", ["status", "provider_id", "priority", "submitted_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_jobs_renter_id"), ["renter_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_jobs_run_deadline"), ["run_deadline"], unique=False)
        batch_op.create_index(batch_op.f("ix_jobs_submitted_at"), ["submitted_at"], unique=False)

    op.create_table(
        "ledger_entries",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("transaction_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["ledger_accounts.id"], name=op.f("fk_ledger_entries_account_id_ledger_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["ledger_transactions.id"],
            name=op.f("fk_ledger_entries_transaction_id_ledger_transactions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_entries")),
    )
    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ledger_entries_account_id"), ["account_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_ledger_entries_transaction_id"), ["transaction_id"], unique=False
        )

    op.create_table(
        "provider_heartbeats",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("received_at", dcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("gpu_util_pct", sa.Integer(), nullable=True),
        sa.Column("temp_c", sa.Integer(), nullable=True),
        sa.Column("gpu_vram_mib", sa.Integer(), nullable=True),
        sa.Column("vram_used_mib", sa.Integer(), nullable=True),
        sa.Column("power_w", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["providers.id"],
            name=op.f("fk_provider_heartbeats_provider_id_providers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_provider_heartbeats")),
    )
    with op.batch_alter_table("provider_heartbeats", schema=None) as batch_op:
        batch_op.create_index(
            "ix_provider_heartbeats_provider_at", ["provider_id", "received_at"], unique=False
        )

    op.create_table(
        "provider_uptime",
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("seconds", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["providers.id"],
            name=op.f("fk_provider_uptime_provider_id_providers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("provider_id", "day", name=op.f("pk_provider_uptime")),
    )
    op.create_table(
        "settlements",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("work_ref", sa.String(length=100), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("renter_id", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=True),
        sa.Column("held_halala", sa.BigInteger(), nullable=False),
        sa.Column("cost_halala", sa.BigInteger(), nullable=False),
        sa.Column("provider_share_halala", sa.BigInteger(), nullable=False),
        sa.Column("platform_fee_halala", sa.BigInteger(), nullable=False),
        sa.Column("refunded_halala", sa.BigInteger(), nullable=False),
        sa.Column("provider_percent", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=300), nullable=True),
        sa.Column("transaction_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("created_at", dcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["ledger_transactions.id"],
            name=op.f("fk_settlements_transaction_id_ledger_transactions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_settlements")),
        sa.UniqueConstraint("work_ref", name=op.f("uq_settlements_work_ref")),
    )
    with op.batch_alter_table("settlements", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_settlements_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_settlements_provider_id"), ["provider_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_settlements_renter_id"), ["renter_id"], unique=False)

    op.create_table(
        "topups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("renter_id", sa.Integer(), nullable=False),
        sa.Column("gateway", sa.String(length=32), nullable=False),
        sa.Column("invoice_id", sa.String(length=100), nullable=False),
        sa.Column("payment_id", sa.String(length=100), nullable=True),
        sa.Column("amount_halala", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("payment_url", sa.String(length=500), nullable=False),
        sa.Column("created_at", dcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("paid_at", dcp.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["renter_id"], ["renters.id"], name=op.f("fk_topups_renter_id_renters")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_topups")),
        sa.UniqueConstraint("invoice_id", name=op.f("uq_topups_invoice_id")),
        sa.UniqueConstraint("payment_id", name=op.f("uq_topups_payment_id")),
    )
    with op.batch_alter_table("topups", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_topups_renter_id"), ["renter_id"], unique=False)

    op.create_table(
        "withdrawals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("amount_halala", sa.BigInteger(), nullable=False),
        sa.Column("iban", sa.String(length=34), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("requested_at", dcp.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("approved_at", dcp.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", dcp.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("payout_reference", sa.String(length=100), nullable=True),
        sa.Column("rejection_reason", sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(
            ["provider_id"], ["providers.id"], name=op.f("fk_withdrawals_provider_id_providers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_withdrawals")),
    )
    with op.batch_alter_table("withdrawals", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_withdrawals_provider_id"), ["provider_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_withdrawals_status"), ["status"], unique=False)
        batch_op.create_index(
            "uq_withdrawals_one_open",
            ["provider_id"],
            unique=True,
            sqlite_where=sa.text("status IN ('pending', 'approved')"),
            postgresql_where=sa.text("status IN ('pending', 'approved')"),
        )


def downgrade() -> None:
    with op.batch_alter_table("withdrawals", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_withdrawals_one_open",
            sqlite_where=sa.text("status IN ('pending', 'approved')"),
            postgresql_where=sa.text("status IN ('pending', 'approved')"),
        )
        batch_op.drop_index(batch_op.f("ix_withdrawals_status"))
        batch_op.drop_index(batch_op.f("ix_withdrawals_provider_id"))

    op.drop_table("withdrawals")
    with op.batch_alter_table("topups", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_topups_renter_id"))

    op.drop_table("topups")
    with op.batch_alter_table("settlements", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_settlements_renter_id"))
        batch_op.drop_index(batch_op.f("ix_settlements_provider_id"))
        batch_op.drop_index(batch_op.f("ix_settlements_created_at"))

    op.drop_table("settlements")
    op.drop_table("provider_uptime")
    with op.batch_alter_table("provider_heartbeats", schema=None) as batch_op:
        batch_op.drop_index("ix_provider_heartbeats_provider_at")

    op.drop_table("provider_heartbeats")
    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ledger_entries_transaction_id"))
        batch_op.drop_index(batch_op.f("ix_ledger_entries_account_id"))

    op.drop_table("ledger_entries")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_jobs_submitted_at"))
        batch_op.drop_index(batch_op.f("ix_jobs_run_deadline"))
        batch_op.drop_index(batch_op.f("ix_jobs_renter_id"))
        batch_op.drop_index("ix_jobs_queue")
        batch_op.drop_index(batch_op.f("ix_jobs_provider_id"))
        batch_op.drop_index(batch_op.f("ix_jobs_lease_expires_at"))

    op.drop_table("jobs")
    op.drop_table("renters")
    with op.batch_alter_table("providers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_providers_last_heartbeat_at"))

    op.drop_table("providers")
    op.drop_table("model_prices")
    with op.batch_alter_table("ledger_transactions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ledger_transactions_reference"))
        batch_op.drop_index(batch_op.f("ix_ledger_transactions_kind"))
        batch_op.drop_index(batch_op.f("ix_ledger_transactions_created_at"))

    op.drop_table("ledger_transactions")
    op.drop_table("ledger_accounts")
    with op.batch_alter_table("gateway_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_gateway_requests_renter_id"))
        batch_op.drop_index(batch_op.f("ix_gateway_requests_provider_id"))
        batch_op.drop_index(batch_op.f("ix_gateway_requests_created_at"))

    op.drop_table("gateway_requests")
