"""Withdrawal endpoints: providers request and follow theirs; admins list, approve, pay or reject."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Header, status

from dcp.auth import AdminDep, CurrentProvider
from dcp.db.session import SessionDep
from dcp.deps import NowDep
from dcp.kit.clock import iso
from dcp.kit.errors import error_responses
from dcp.kit.fields import IdPath
from dcp.kit.money import sar_string
from dcp.kit.pagination import PageDep
from dcp.models import Withdrawal
from dcp.withdrawals import repository, service
from dcp.withdrawals.iban import mask_iban
from dcp.withdrawals.schemas import (
    AdminWithdrawals,
    MarkPaid,
    Reject,
    WithdrawalList,
    WithdrawalOne,
    WithdrawalRequest,
    WithdrawalSummary,
    WithdrawalView,
)

provider_router = APIRouter(prefix="/providers", tags=["providers"])
admin_router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[AdminDep])
_ADMIN_ONE = error_responses(400, 401, 403, 404, 409)


@provider_router.post(
    "/withdrawals",
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(400, 401, 403, 409),
    summary="Ask to be paid earnings to a Saudi IBAN (minimum 10 SAR, one open request at a time)",
    description="With an Idempotency-Key, a retried request answers with the withdrawal it made (409 if the "
    "same key comes with another amount or IBAN), so a lost answer can be asked again safely.",
)
async def request_withdrawal(
    body: WithdrawalRequest,
    provider: CurrentProvider,
    session: SessionDep,
    now: NowDep,
    idempotency_key: Annotated[str | None, Header(min_length=1, max_length=100)] = None,
) -> WithdrawalOne:
    withdrawal = await service.request(
        session,
        provider_id=provider.id,
        amount=body.amount_halala,
        iban=body.iban,
        now=now,
        idempotency_key=idempotency_key,
    )
    return WithdrawalOne(withdrawal=view(withdrawal, masked=True))


@provider_router.get(
    "/withdrawals", responses=error_responses(400, 401, 403), summary="The provider's withdrawals"
)
async def my_withdrawals(provider: CurrentProvider, session: SessionDep, page: PageDep) -> WithdrawalList:
    found, total = await repository.listing(
        session, where=[Withdrawal.provider_id == provider.id], limit=page.limit, offset=page.offset
    )
    return WithdrawalList(
        withdrawals=[view(w, masked=True) for w in found], total=total, limit=page.limit, offset=page.offset
    )


@admin_router.get("/withdrawals", responses=error_responses(400, 401, 403), summary="Withdrawal requests")
async def list_withdrawals(
    session: SessionDep,
    page: PageDep,
    status: Literal["pending", "approved", "paid", "rejected"] | None = None,
) -> AdminWithdrawals:
    where = [Withdrawal.status == status] if status else []
    found, total = await repository.listing(session, where=where, limit=page.limit, offset=page.offset)
    open_ones, _ = await repository.listing(
        session, where=[Withdrawal.status.in_(("pending", "approved"))], limit=200, offset=0
    )
    counts = await repository.by_status(session)
    summary = WithdrawalSummary(
        pending_count=counts.get("pending", (0, 0))[0],
        pending_halala=counts.get("pending", (0, 0))[1],
        approved_count=counts.get("approved", (0, 0))[0],
        approved_halala=counts.get("approved", (0, 0))[1],
        paid_count=counts.get("paid", (0, 0))[0],
        paid_halala=counts.get("paid", (0, 0))[1],
        rejected_count=counts.get("rejected", (0, 0))[0],
    )
    return AdminWithdrawals(
        pending=[view(w) for w in open_ones],
        all=[view(w) for w in found],
        summary=summary,
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


@admin_router.post("/withdrawals/{withdrawal_id}/approve", responses=_ADMIN_ONE, summary="Approve a request")
async def approve(withdrawal_id: IdPath, session: SessionDep, now: NowDep) -> WithdrawalOne:
    return WithdrawalOne(
        withdrawal=view(await service.approve(session, withdrawal_id=withdrawal_id, now=now))
    )


@admin_router.post(
    "/withdrawals/{withdrawal_id}/paid", responses=_ADMIN_ONE, summary="Record the bank payment"
)
async def mark_paid(withdrawal_id: IdPath, body: MarkPaid, session: SessionDep, now: NowDep) -> WithdrawalOne:
    paid = await service.mark_paid(session, withdrawal_id=withdrawal_id, reference=body.reference, now=now)
    return WithdrawalOne(withdrawal=view(paid))


@admin_router.post(
    "/withdrawals/{withdrawal_id}/reject", responses=_ADMIN_ONE, summary="Reject; money returns"
)
async def reject(withdrawal_id: IdPath, body: Reject, session: SessionDep, now: NowDep) -> WithdrawalOne:
    rejected = await service.reject(session, withdrawal_id=withdrawal_id, reason=body.reason, now=now)
    return WithdrawalOne(withdrawal=view(rejected))


def view(withdrawal: Withdrawal, *, masked: bool = False) -> WithdrawalView:
    return WithdrawalView(
        id=withdrawal.id,
        provider_id=withdrawal.provider_id,
        amount_halala=withdrawal.amount_halala,
        amount_sar=sar_string(withdrawal.amount_halala),
        iban=mask_iban(withdrawal.iban) if masked else withdrawal.iban,
        status=withdrawal.status,
        requested_at=iso(withdrawal.requested_at),
        approved_at=iso(withdrawal.approved_at),
        finished_at=iso(withdrawal.finished_at),
        payout_reference=withdrawal.payout_reference,
        rejection_reason=withdrawal.rejection_reason,
    )
