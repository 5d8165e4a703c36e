"""One row per finished piece of paid work (a job or a /v1 request): how its hold was resolved."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from dcp.db.base import Base
from dcp.db.types import BigId, UTCDateTime


class Settlement(Base):
    """``work_ref`` is unique: a job is settled or refunded at most once, enforced by the database."""

    __tablename__ = "settlements"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    work_ref: Mapped[str] = mapped_column(String(100), unique=True)
    outcome: Mapped[str] = mapped_column(String(16))  # settled | refunded
    renter_id: Mapped[int] = mapped_column(Integer, index=True)
    provider_id: Mapped[int | None] = mapped_column(Integer, index=True)
    held_halala: Mapped[int] = mapped_column(BigInteger)
    cost_halala: Mapped[int] = mapped_column(BigInteger)
    provider_share_halala: Mapped[int] = mapped_column(BigInteger)
    platform_fee_halala: Mapped[int] = mapped_column(BigInteger)
    refunded_halala: Mapped[int] = mapped_column(BigInteger)
    provider_percent: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str | None] = mapped_column(String(300))
    transaction_id: Mapped[int] = mapped_column(ForeignKey("ledger_transactions.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
