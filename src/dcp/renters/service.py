"""Renter rules: registration (with the starter balance), balances, key rotation."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from dcp.billing import ledger
from dcp.billing.ledger import PLATFORM, Account, Leg, TxKind
from dcp.config import Settings
from dcp.kit import keys
from dcp.kit.clock import iso
from dcp.kit.money import sar_string
from dcp.models import Renter
from dcp.renters import repository
from dcp.renters.errors import EmailTaken
from dcp.renters.schemas import Balance, RenterRegister, RenterView


async def register(
    session: AsyncSession, *, data: RenterRegister, settings: Settings, now: datetime
) -> tuple[Renter, str]:
    """Create a renter (with the configured starter balance); returns it with its key, shown once."""
    if await repository.by_email(session, data.email):
        raise EmailTaken()
    key = keys.new_key(keys.Role.renter)
    renter = Renter(
        name=data.name,
        email=data.email,
        organization=data.organization,
        use_case=data.use_case,
        phone=data.phone,
        key_digest=keys.digest(key, secret=settings.secret_bytes),
        status="active",
        created_at=now,
    )
    session.add(renter)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        raise EmailTaken() from exc
    if settings.starter_balance_halala:
        await ledger.post(
            session,
            kind=TxKind.topup,
            reference=f"renter:{renter.id}",
            idempotency_key=f"starter-balance:renter:{renter.id}",
            legs=[
                Leg(Account.cash, PLATFORM, -settings.starter_balance_halala),
                Leg(Account.renter_available, renter.id, settings.starter_balance_halala),
            ],
            now=now,
            memo="Starter balance",
        )
    return renter, key


async def balance(session: AsyncSession, renter_id: int) -> Balance:
    available = await ledger.balance(session, Account.renter_available, renter_id)
    held = await ledger.balance(session, Account.renter_held, renter_id)
    return Balance(
        balance_halala=available,
        balance_sar=sar_string(available),
        held_halala=held,
        held_sar=sar_string(held),
        total_halala=available + held,
    )


async def rotate_key(session: AsyncSession, *, renter: Renter, settings: Settings) -> str:
    key = keys.new_key(keys.Role.renter)
    renter.key_digest = keys.digest(key, secret=settings.secret_bytes)
    await session.flush()
    return key


def renter_view(renter: Renter, *, available: int, held: int, jobs: int) -> RenterView:
    """How a renter looks to itself; admins see the same fields and the phone number."""
    return RenterView(
        id=renter.id,
        name=renter.name,
        email=renter.email,
        organization=renter.organization,
        use_case=renter.use_case,
        status=renter.status,
        created_at=iso(renter.created_at),
        balance_halala=available,
        balance_sar=sar_string(available),
        held_halala=held,
        total_jobs=jobs,
    )
