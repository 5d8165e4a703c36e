"""The provider's withdrawals page: ask to be paid to a Saudi IBAN, and the history of requests."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from dcp.billing import ledger
from dcp.billing.ledger import Account
from dcp.db.session import SessionDep
from dcp.deps import NowDep
from dcp.kit.errors import AppError
from dcp.kit.pagination import Page as Listing
from dcp.kit.pagination import PageDep as ListingDep
from dcp.models import Withdrawal
from dcp.web.context import FormDep, Page, ProviderPage
from dcp.web.forms import halala_of
from dcp.withdrawals import repository, service
from dcp.withdrawals.api import view
from dcp.withdrawals.errors import MoreThanEarned
from dcp.withdrawals.schemas import MIN_WITHDRAWAL_HALALA, WithdrawalRequest

router = APIRouter(include_in_schema=False)


@router.get("/withdrawals", response_class=HTMLResponse)
async def withdrawals(
    page: ProviderPage, session: SessionDep, listing: ListingDep, sent: Annotated[bool, Query()] = False
) -> Response:
    return await _render(page, session, listing, sent=sent)


@router.post("/withdrawals", response_class=HTMLResponse)
async def request_withdrawal(
    page: ProviderPage, form: FormDep, session: SessionDep, listing: ListingDep, now: NowDep
) -> Response:
    values = {"amount_sar": form.get("amount_sar", ""), "iban": form.get("iban", "")}
    try:
        body = WithdrawalRequest.model_validate(
            {"amount_halala": halala_of(values["amount_sar"]), "iban": values["iban"]}
        )
        await service.request(
            session, provider_id=page.account_id, amount=body.amount_halala, iban=body.iban, now=now
        )
    except ValidationError as exc:
        return await _render(page, session, listing, status=400, values=values, errors=_errors(exc, page))
    except MoreThanEarned as exc:
        await session.rollback()
        errors = {"amount_sar": page.error_text(exc)}
        return await _render(page, session, listing, status=exc.status, values=values, errors=errors)
    except AppError as exc:
        await session.rollback()
        return await _render(page, session, listing, status=exc.status, values=values, error=exc)
    return page.redirect("/provider/withdrawals?sent=1")


def _errors(error: ValidationError, page: Page) -> dict[str, str]:
    """One translated message per form field; the IBAN rule is the API's own (SA, 22 digits, mod 97)."""
    found: dict[str, str] = {}
    for problem in error.errors():
        if problem["loc"][0] == "iban":
            found.setdefault("iban", page.t("provider.err_iban"))
        elif problem["type"] == "greater_than_equal":
            found.setdefault(
                "amount_sar", page.t("provider.err_amount_min", min=page.locale.sar(MIN_WITHDRAWAL_HALALA))
            )
        else:
            found.setdefault("amount_sar", page.t("provider.err_amount"))
    return found


async def _render(
    page: Page,
    session: AsyncSession,
    listing: Listing,
    *,
    status: int = 200,
    sent: bool = False,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    error: AppError | None = None,
) -> Response:
    provider_id = page.account_id
    found, total = await repository.listing(
        session, where=[Withdrawal.provider_id == provider_id], limit=listing.limit, offset=listing.offset
    )
    return page.render(
        "provider/withdrawals.html",
        status=status,
        error=error,
        sent=sent,
        values=values or {},
        errors=errors or {},
        available=await ledger.balance(session, Account.provider_earnings, provider_id),
        payout_pending=await ledger.balance(session, Account.provider_payout_pending, provider_id),
        minimum=MIN_WITHDRAWAL_HALALA,
        rows=[view(w, masked=True) for w in found],
        total=total,
        listing=listing,
    )
