"""The audit trail of administrative actions: who, when, what, from which address, and how it ended."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from dcp.db.base import Base
from dcp.db.types import BigId, UTCDateTime


class AuditEvent(Base):
    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    actor: Mapped[str] = mapped_column(String(40), index=True)
    client_ip: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(200))  # "POST /api/admin/withdrawals/12/approve"
    status: Mapped[int] = mapped_column(Integer)
    request_id: Mapped[str] = mapped_column(String(64))
