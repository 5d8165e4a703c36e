"""The append-only, double-entry ledger: accounts, transactions and their entries (integer halala)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from dcp.db.base import Base
from dcp.db.types import BigId, UTCDateTime


class LedgerAccount(Base):
    """One balance: a renter's available or held money, a provider's earnings, the platform's fees, cash.

    ``balance`` caches the sum of the account's entries so that a conditional UPDATE can refuse to take
    an account below zero atomically on every database; ``dcp admin check-ledger`` proves cache == sum.
    """

    __tablename__ = "ledger_accounts"
    __table_args__ = (
        UniqueConstraint("kind", "owner_id", name="uq_ledger_accounts_kind_owner"),
        CheckConstraint("may_go_negative OR balance >= 0", name="non_negative"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    owner_id: Mapped[int] = mapped_column(Integer)  # renter or provider id; 0 for platform accounts
    balance: Mapped[int] = mapped_column(BigInteger, default=0)
    may_go_negative: Mapped[bool] = mapped_column(default=False)


class LedgerTransaction(Base):
    """One movement of money; its entries sum to zero. The idempotency key makes it happen once."""

    __tablename__ = "ledger_transactions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    reference: Mapped[str] = mapped_column(String(100), index=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    memo: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    # Who moved the money and from which address (the audit trail); "system" for background work.
    actor: Mapped[str] = mapped_column(String(40), default="system", server_default="system")
    client_ip: Mapped[str] = mapped_column(String(64), default="-", server_default="-")


class LedgerEntry(Base):
    __tablename__ = "ledger_entries"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    transaction_id: Mapped[int] = mapped_column(ForeignKey("ledger_transactions.id"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("ledger_accounts.id"), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)
