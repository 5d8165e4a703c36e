"""Renter endpoints: register, me, balance, rotate-key, and the public list of providers."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from dcp.auth import CurrentRenter
from dcp.billing import statements
from dcp.billing.ledger import Account
from dcp.db.session import SessionDep
from dcp.deps import NowDep, SettingsDep
from dcp.jobs import views
from dcp.kit.errors import error_responses
from dcp.kit.pagination import PageDep
from dcp.providers import market
from dcp.providers.schemas import MarketListing, ModelName, RotatedKey
from dcp.renters import service
from dcp.renters.schemas import (
    Balance,
    RenterMe,
    RenterRegister,
    RenterRegistered,
    RenterStatement,
)

router = APIRouter(prefix="/renters", tags=["renters"])


@router.post(
    "/register",
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(400, 409, 413),
    summary="Register a renter and return its API key (shown once)",
)
async def register(
    body: RenterRegister, session: SessionDep, settings: SettingsDep, now: NowDep
) -> RenterRegistered:
    renter, key = await service.register(session, data=body, settings=settings, now=now)
    return RenterRegistered(
        renter_id=renter.id,
        api_key=key,
        message=f"Welcome {renter.name}! Save your API key — it won't be shown again.",
    )


@router.get("/me", responses=error_responses(401, 403), summary="The renter's profile and wallet")
async def me(renter: CurrentRenter, session: SessionDep) -> RenterMe:
    wallet = await service.balance(session, renter.id)
    recent, total = await views.recent(session, renter_id=renter.id)
    view = service.renter_view(renter, available=wallet.balance_halala, held=wallet.held_halala, jobs=total)
    return RenterMe(renter=view, recent_jobs=recent)


@router.get("/balance", responses=error_responses(401, 403), summary="Available and held money")
async def balance(renter: CurrentRenter, session: SessionDep) -> Balance:
    return await service.balance(session, renter.id)


@router.post(
    "/rotate-key", responses=error_responses(401, 403), summary="Replace the key; the old one stops working"
)
async def rotate_key(renter: CurrentRenter, session: SessionDep, settings: SettingsDep) -> RotatedKey:
    key = await service.rotate_key(session, renter=renter, settings=settings)
    return RotatedKey(api_key=key, message="Key rotated. The old key no longer works.")


@router.get(
    "/available-providers",
    responses=error_responses(400),
    summary="GPU providers on the marketplace, in id order",
)
async def available_providers(
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    page: PageDep,
    live_only: Annotated[bool, Query(description="Only providers online and accepting jobs now")] = False,
    min_vram_gb: Annotated[int | None, Query(ge=0, le=4096)] = None,
    gpu_model: Annotated[ModelName | None, Query(description="Substring of the GPU model")] = None,
    after: Annotated[
        int | None,
        Query(
            ge=0, le=2**31 - 1, description="Only providers after this id: the previous page's `next_after`"
        ),
    ] = None,
) -> MarketListing:
    return await market.listing(
        session,
        settings=settings,
        now=now,
        live_only=live_only,
        min_vram_gb=min_vram_gb,
        gpu_model=gpu_model,
        limit=page.limit,
        offset=page.offset,
        after=after,
    )


@router.get(
    "/transactions",
    response_model=RenterStatement,
    responses={**error_responses(400, 401, 403), **statements.CSV_RESPONSE},
    summary="The renter's statement (paged, filter by date, CSV with format=csv)",
)
async def transactions(
    renter: CurrentRenter, session: SessionDep, page: PageDep, query: statements.StatementFilterDep
) -> RenterStatement | Response:
    rows, total = await statements.lines(
        session, account=Account.renter_available, owner_id=renter.id, query=query, page=page
    )
    if query.csv:
        return statements.csv_download(rows, f"dcp-statement-renter-{renter.id}.csv")
    wallet = await service.balance(session, renter.id)
    return RenterStatement(
        balance_halala=wallet.balance_halala,
        held_halala=wallet.held_halala,
        transactions=rows,
        total=total,
        limit=page.limit,
        offset=page.offset,
    )
