"""Withdrawal rules: one open request per provider, money parked in payout_pending until paid or rejected."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from dcp.billing import ledger
from dcp.billing.ledger import PLATFORM, Account, Leg, TxKind
from dcp.models import Withdrawal
from dcp.withdrawals import repository
from dcp.withdrawals.errors import (
    AlreadyOpen,
    IdempotencyMismatch,
    MoreThanEarned,
    WithdrawalNotFound,
    WrongState,
)


async def request(
    session: AsyncSession,
    *,
    provider_id: int,
    amount: int,
    iban: str,
    now: datetime,
    idempotency_key: str | None = None,
) -> Withdrawal:
    """Open a withdrawal; under an Idempotency-Key already used, the request it made (409 if it differs)."""
    if made := await _made_under(session, provider_id, idempotency_key, amount, iban):
        return made
    if await repository.open_for(session, provider_id):
        raise AlreadyOpen()
    available = await ledger.balance(session, Account.provider_earnings, provider_id)
    if amount > available:
        raise MoreThanEarned(requested=amount, available=available)
    withdrawal = Withdrawal(
        provider_id=provider_id,
        amount_halala=amount,
        iban=iban,
        status="pending",
        requested_at=now,
        idempotency_key=idempotency_key,
    )
    try:
        async with session.begin_nested():
            session.add(withdrawal)
            await session.flush()
    except IntegrityError as exc:  # a concurrent request opened one first, perhaps this one under its key
        if made := await _made_under(session, provider_id, idempotency_key, amount, iban):
            return made
        raise AlreadyOpen() from exc
    await _move(
        session,
        withdrawal,
        TxKind.withdrawal_request,
        Account.provider_earnings,
        Account.provider_payout_pending,
        now=now,
    )
    return withdrawal


async def _made_under(
    session: AsyncSession, provider_id: int, idempotency_key: str | None, amount: int, iban: str
) -> Withdrawal | None:
    """The withdrawal this provider already made under this key, if any; 409 if it asked for another."""
    if idempotency_key is None:
        return None
    made = await repository.by_key(session, provider_id, idempotency_key)
    if made is not None and (made.amount_halala, made.iban) != (amount, iban):
        raise IdempotencyMismatch()
    return made


async def approve(session: AsyncSession, *, withdrawal_id: int, now: datetime) -> Withdrawal:
    return await _transition(
        session,
        withdrawal_id,
        action="approve",
        allowed_from=("pending",),
        status="approved",
        approved_at=now,
    )


async def mark_paid(
    session: AsyncSession, *, withdrawal_id: int, reference: str, now: datetime
) -> Withdrawal:
    withdrawal = await _transition(
        session,
        withdrawal_id,
        action="mark paid",
        allowed_from=("approved",),
        status="paid",
        finished_at=now,
        payout_reference=reference,
    )
    await _move(
        session, withdrawal, TxKind.withdrawal_paid, Account.provider_payout_pending, Account.cash, now=now
    )
    return withdrawal


async def reject(session: AsyncSession, *, withdrawal_id: int, reason: str, now: datetime) -> Withdrawal:
    withdrawal = await _transition(
        session,
        withdrawal_id,
        action="reject",
        allowed_from=("pending", "approved"),
        status="rejected",
        finished_at=now,
        rejection_reason=reason,
    )
    await _move(
        session,
        withdrawal,
        TxKind.withdrawal_rejected,
        Account.provider_payout_pending,
        Account.provider_earnings,
        now=now,
    )
    return withdrawal


async def _transition(
    session: AsyncSession, withdrawal_id: int, *, action: str, allowed_from: tuple[str, ...], **values: object
) -> Withdrawal:
    changed = await repository.transition(session, withdrawal_id, allowed_from=allowed_from, **values)
    if changed is not None:
        return changed
    current = await session.get(Withdrawal, withdrawal_id)
    if current is None:
        raise WithdrawalNotFound()
    raise WrongState(action=action, status=current.status)


async def _move(
    session: AsyncSession,
    withdrawal: Withdrawal,
    kind: TxKind,
    source: Account,
    target: Account,
    *,
    now: datetime,
) -> None:
    amount = withdrawal.amount_halala
    target_owner = PLATFORM if target is Account.cash else withdrawal.provider_id
    await ledger.post(
        session,
        kind=kind,
        reference=f"withdrawal:{withdrawal.id}",
        idempotency_key=f"{kind}:withdrawal:{withdrawal.id}",
        legs=[Leg(source, withdrawal.provider_id, -amount), Leg(target, target_owner, amount)],
        now=now,
    )
