"""Online top-ups: open a hosted invoice, then credit the renter once when the gateway confirms payment."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from dcp.billing import ledger
from dcp.billing.ledger import PLATFORM, Account, Leg, TxKind
from dcp.config import Settings
from dcp.db.session import end_transaction
from dcp.kit.errors import BadRequest
from dcp.kit.money import sar_string
from dcp.models import Topup
from dcp.payments.errors import GatewayUnavailable, TopupsDisabled
from dcp.payments.gateway import GatewayError, Invoice, Payment, PaymentGateway


async def start_topup(
    session: AsyncSession,
    *,
    gateway: PaymentGateway | None,
    renter_id: int,
    amount_halala: int,
    settings: Settings,
    now: datetime,
) -> Topup:
    """Open a hosted invoice for the renter to pay; the balance moves only when the gateway confirms."""
    if gateway is None:
        raise TopupsDisabled()
    low, high = settings.moyasar.min_topup_halala, settings.moyasar.max_topup_halala
    if not low <= amount_halala <= high:
        raise BadRequest(f"Invalid amount_halala: must be between {low} and {high}")
    await end_transaction(session)  # no lock held while the gateway answers
    try:
        invoice = await gateway.create_invoice(
            amount_halala=amount_halala,
            description=f"DCP balance top-up for renter {renter_id}",
            success_url=f"{settings.public_url}/renter",
        )
    except GatewayError as exc:
        raise GatewayUnavailable() from exc
    return await _record_invoice(session, renter_id=renter_id, gateway=gateway.name, invoice=invoice, now=now)


async def _record_invoice(
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
