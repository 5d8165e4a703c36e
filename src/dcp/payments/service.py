"""Online top-ups: open a hosted invoice, then credit the renter once when the gateway confirms payment."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from dcp.billing import ledger
from dcp.billing.ledger import PLATFORM, Account, Leg, TxKind
from dcp.kit.errors import BadRequest
from dcp.kit.money import sar_string
from dcp.models import Topup
from dcp.payments.gateway import Invoice, Payment


async def record_invoice(
    session: AsyncSession, *, renter_id: int, gateway: str, invoice: Invoice, now: datetime
) -> Topup:
    topup = Topup(
        renter_id=renter_id,
        gateway=gateway,
        invoice_id=invoice.id,
        amount_halala=invoice.amount_halala,
        status="created",
        payment_url=invoice.url,
        created_at=now,
    )
    session.add(topup)
    await session.flush()
    return topup


async def by_invoice(session: AsyncSession, invoice_id: str) -> Topup | None:
    found = await session.execute(select(Topup).where(Topup.invoice_id == invoice_id))
    return found.scalar_one_or_none()


async def credit_paid(session: AsyncSession, *, topup: Topup, payment: Payment, now: datetime) -> bool:
    """Credit a verified payment once; returns False when it was already credited."""
    if payment.status != "paid" or payment.currency != "SAR" or payment.invoice_id != topup.invoice_id:
        raise BadRequest("The gateway does not confirm this payment as paid for this top-up")
    if payment.amount_halala != topup.amount_halala:
        raise BadRequest(
            f"Paid amount {sar_string(payment.amount_halala)} SAR differs from the top-up's "
            f"{sar_string(topup.amount_halala)} SAR"
        )
    marked = await session.execute(
        update(Topup)
        .where(Topup.id == topup.id, Topup.status == "created")
        .values(status="paid", payment_id=payment.id, paid_at=now)
        .returning(Topup.id)
    )
    if marked.scalar_one_or_none() is None:
        return False
    await ledger.post(
        session,
        kind=TxKind.topup,
        reference=f"topup:{topup.id}",
        idempotency_key=f"{topup.gateway}:{payment.id}",
        legs=[
            Leg(Account.cash, PLATFORM, -payment.amount_halala),
            Leg(Account.renter_available, topup.renter_id, payment.amount_halala),
        ],
        now=now,
        memo=f"Online top-up ({topup.gateway} payment {payment.id})",
    )
    return True
