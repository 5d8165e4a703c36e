"""Providers' requests to be paid their earnings to a Saudi IBAN."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from dcp.db.base import Base
from dcp.db.types import UTCDateTime

OPEN_STATUSES = ("pending", "approved")
_OPEN = text("status IN ('pending', 'approved')")


class Withdrawal(Base):
    """pending → approved → paid, or pending/approved → rejected. At most one open request per provider."""

    __tablename__ = "withdrawals"
    __table_args__ = (
        Index(
            "uq_withdrawals_one_open", "provider_id", unique=True, sqlite_where=_OPEN, postgresql_where=_OPEN
        ),
        Index("uq_withdrawals_idempotency", "provider_id", "idempotency_key", unique=True),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id"), index=True)
    amount_halala: Mapped[int] = mapped_column(BigInteger)
    iban: Mapped[str] = mapped_column(String(34))
    status: Mapped[str] = mapped_column(String(16), index=True)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    payout_reference: Mapped[str | None] = mapped_column(String(100))
    rejection_reason: Mapped[str | None] = mapped_column(String(500))
    idempotency_key: Mapped[str | None] = mapped_column(String(100))  # a retried request finds its first
