"""Jobs: what a renter asked for, where it runs, its lease, and how it ended."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from dcp.db.base import Base
from dcp.db.types import UTCDateTime

ACTIVE_STATUSES = ("assigned", "running")
OPEN_STATUSES = ("pending", "assigned", "running")
TERMINAL_STATUSES = ("completed", "failed", "cancelled")


class Job(Base):
    """pending → assigned (leased to a provider) → running → completed | failed | cancelled.

    ``provider_id`` is set while the job is placed on one provider; a pending job without one waits in
    the shared queue for any provider that meets ``min_vram_mib`` and ``gpu_model``.
    """

    __tablename__ = "jobs"
    __table_args__ = (
        UniqueConstraint("renter_id", "idempotency_key", name="uq_jobs_renter_idempotency"),
        Index("ix_jobs_queue", "status", "provider_id", "priority", "submitted_at"),
        # The order a provider claims from the queue (dispatch.claim_next): without it, 10,000 waiting
        # jobs were sorted on every claim (bench placement).
        Index("ix_jobs_claim", "status", text("priority DESC"), "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[str] = mapped_column(String(40), unique=True)
    renter_id: Mapped[int] = mapped_column(ForeignKey("renters.id"), index=True)
    provider_id: Mapped[int | None] = mapped_column(ForeignKey("providers.id"), index=True)
    requested_provider_id: Mapped[int | None] = mapped_column(Integer)
    job_type: Mapped[str] = mapped_column(String(32))
    model: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    container_spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    gpu_requirements: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    min_vram_mib: Mapped[int] = mapped_column(Integer, default=0)
    gpu_model: Mapped[str | None] = mapped_column(String(100))
    pricing_class: Mapped[str] = mapped_column(String(16))
    priority: Mapped[int] = mapped_column(Integer)
    duration_minutes: Mapped[int] = mapped_column(Integer)
    max_duration_seconds: Mapped[int] = mapped_column(Integer)
    per_minute_halala: Mapped[int] = mapped_column(Integer)
    class_percent: Mapped[int] = mapped_column(Integer)
    cost_halala: Mapped[int] = mapped_column(BigInteger)
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    queue_deadline: Mapped[datetime] = mapped_column(UTCDateTime)
    timeout_at: Mapped[datetime] = mapped_column(UTCDateTime)
    assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    run_deadline: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    excluded_providers: Mapped[list[int]] = mapped_column(JSON, default=list)
    lease_token: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    progress: Mapped[int] = mapped_column(Integer, default=0)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    tokens_generated: Mapped[int | None] = mapped_column(Integer)
    execution_time_ms: Mapped[int | None] = mapped_column(BigInteger)
    idempotency_key: Mapped[str | None] = mapped_column(String(100))
    request_hash: Mapped[str] = mapped_column(String(64))
