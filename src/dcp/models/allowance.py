"""A renter's /v1 allowance in one server process: one ledger hold that many requests draw from."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from dcp.db.base import Base
from dcp.db.types import BigId, UTCDateTime


class GatewayAllowance(Base):
    """``held_halala`` is what its hold transactions (reference ``reference``) took from the renter,
    ``spent_halala`` what settled requests charged from it; closing it releases the difference once.
    ``renewed_at`` is refreshed by the process that owns it: the sweeper closes one that stopped."""

    __tablename__ = "gateway_allowances"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    reference: Mapped[str] = mapped_column(String(100), unique=True)
    renter_id: Mapped[int] = mapped_column(Integer, index=True)
    process: Mapped[str] = mapped_column(String(40))
    held_halala: Mapped[int] = mapped_column(BigInteger)
    spent_halala: Mapped[int] = mapped_column(BigInteger, default=0)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    renewed_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_reason: Mapped[str | None] = mapped_column(String(100))
