"""Renters' online top-ups through a payment gateway."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from dcp.db.base import Base
from dcp.db.types import UTCDateTime


class Topup(Base):
    """created → paid (credited once) or failed. The gateway's invoice and payment ids are unique."""

    __tablename__ = "topups"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    renter_id: Mapped[int] = mapped_column(ForeignKey("renters.id"), index=True)
    gateway: Mapped[str] = mapped_column(String(32))
    invoice_id: Mapped[str] = mapped_column(String(100), unique=True)
    payment_id: Mapped[str | None] = mapped_column(String(100), unique=True)
    amount_halala: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))
    payment_url: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
