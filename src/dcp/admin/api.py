"""Admin endpoints: dashboard, providers, renters, credits, key rotation."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query
from sqlalchemy.ext.asyncio import AsyncSession

from dcp.admin import service
from dcp.admin.schemas import (
    AdminRenterView,
    Credit,
    Credited,
    Dashboard,
    ModelPriceBody,
    ModelPriceList,
    ModelPriceView,
    ProviderList,
    ProviderOne,
    RenterList,
    RenterOne,
)
from dcp.auth import AdminDep
from dcp.billing import ledger, token_prices, topups
from dcp.billing.ledger import Account
from dcp.config import PricingSettings
from dcp.db.session import SessionDep
from dcp.deps import NowDep, SettingsDep
from dcp.jobs import repository as job_repository
from dcp.kit.clock import iso
from dcp.kit.errors import BadRequest, NotFound, error_responses
from dcp.kit.fields import IdPath
from dcp.kit.money import sar_string
from dcp.kit.pagination import PageDep
from dcp.models import ModelPrice, Provider, Renter
from dcp.providers import repository as providers
from dcp.providers import service as provider_service
from dcp.providers.api import provider_view
from dcp.providers.errors import ProviderNotFound
from dcp.providers.schemas import RotatedKey
from dcp.renters import repository as renters
from dcp.renters import service as renter_service
from dcp.renters.errors import RenterNotFound

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[AdminDep])
_ERRORS = error_responses(401, 403)
_ONE_ERRORS = error_responses(400, 401, 403, 404)
SearchText = Annotated[str | None, Query(max_length=100, description="Substring of name, email, GPU or org")]


@router.get("/dashboard", responses=_ERRORS, summary="Platform metrics for operations and finance")
async def dashboard(session: SessionDep, settings: SettingsDep, now: NowDep) -> Dashboard:
    return await service.dashboard(session, settings=settings, now=now)


@router.get("/providers", responses=error_responses(400, 401, 403), summary="List and search providers")
async def list_providers(
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    page: PageDep,
    q: SearchText = None,
    approval_status: Literal["pending", "approved", "suspended"] | None = None,
) -> ProviderList:
    where = []
    if q:
        where.append(providers.search_clause(q))
    if approval_status:
        where.append(Provider.approval_status == approval_status)
    found, total = await providers.listing(session, where=where, limit=page.limit, offset=page.offset)
    views = [await provider_view(session, p, settings=settings, now=now) for p in found]
    return ProviderList(providers=views, total=total, limit=page.limit, offset=page.offset)


@router.get("/providers/{provider_id}", responses=_ONE_ERRORS, summary="One provider")
async def get_provider(
    provider_id: IdPath, session: SessionDep, settings: SettingsDep, now: NowDep
) -> ProviderOne:
    provider = await _provider(session, provider_id)
    return ProviderOne(provider=await provider_view(session, provider, settings=settings, now=now))


@router.post("/providers/{provider_id}/approve", responses=_ONE_ERRORS, summary="Approve a provider for jobs")
async def approve_provider(
    provider_id: IdPath, session: SessionDep, settings: SettingsDep, now: NowDep
) -> ProviderOne:
    provider = await _provider(session, provider_id)
    provider.approval_status = "approved"
    return ProviderOne(provider=await provider_view(session, provider, settings=settings, now=now))


@router.post("/providers/{provider_id}/suspend", responses=_ONE_ERRORS, summary="Suspend a provider")
async def suspend_provider(
    provider_id: IdPath, session: SessionDep, settings: SettingsDep, now: NowDep
) -> ProviderOne:
    provider = await _provider(session, provider_id)
    provider.approval_status = "suspended"
    return ProviderOne(provider=await provider_view(session, provider, settings=settings, now=now))


@router.post("/providers/{provider_id}/rotate-key", responses=_ONE_ERRORS, summary="Issue a new provider key")
async def rotate_provider_key(provider_id: IdPath, session: SessionDep, settings: SettingsDep) -> RotatedKey:
    provider = await _provider(session, provider_id)
    key = await provider_service.rotate_key(session, provider=provider, settings=settings)
    return RotatedKey(
        api_key=key, message=f"New key for provider {provider.id}; the old key no longer works."
    )


@router.get("/renters", responses=error_responses(400, 401, 403), summary="List and search renters")
async def list_renters(
    session: SessionDep,
    page: PageDep,
    q: SearchText = None,
    status: Literal["active", "suspended"] | None = None,
) -> RenterList:
    where = []
    if q:
        where.append(renters.search_clause(q))
    if status:
        where.append(Renter.status == status)
    found, total = await renters.listing(session, where=where, limit=page.limit, offset=page.offset)
    ids = [r.id for r in found]
    available = await ledger.balances(session, Account.renter_available, ids)
    held = await ledger.balances(session, Account.renter_held, ids)
    jobs = await job_repository.counts_by_renter(session, ids)
    views = [_renter_view(r, available=available[r.id], held=held[r.id], jobs=jobs[r.id]) for r in found]
    return RenterList(renters=views, total=total, limit=page.limit, offset=page.offset)


@router.get("/renters/{renter_id}", responses=_ONE_ERRORS, summary="One renter")
async def get_renter(renter_id: IdPath, session: SessionDep) -> RenterOne:
    return RenterOne(renter=await _renter_one(session, await _renter(session, renter_id)))


@router.post("/renters/{renter_id}/suspend", responses=_ONE_ERRORS, summary="Suspend a renter")
async def suspend_renter(renter_id: IdPath, session: SessionDep) -> RenterOne:
    renter = await _renter(session, renter_id)
    renter.status = "suspended"
    return RenterOne(renter=await _renter_one(session, renter))


@router.post("/renters/{renter_id}/activate", responses=_ONE_ERRORS, summary="Lift a renter's suspension")
async def activate_renter(renter_id: IdPath, session: SessionDep) -> RenterOne:
    renter = await _renter(session, renter_id)
    renter.status = "active"
    return RenterOne(renter=await _renter_one(session, renter))


@router.post("/renters/{renter_id}/rotate-key", responses=_ONE_ERRORS, summary="Issue a new renter key")
async def rotate_renter_key(renter_id: IdPath, session: SessionDep, settings: SettingsDep) -> RotatedKey:
    renter = await _renter(session, renter_id)
    key = await renter_service.rotate_key(session, renter=renter, settings=settings)
    return RotatedKey(api_key=key, message=f"New key for renter {renter.id}; the old key no longer works.")


@router.post(
    "/renters/{renter_id}/credit",
    responses=error_responses(400, 401, 403, 404, 409),
    summary="Credit a renter's balance (idempotent with an Idempotency-Key)",
)
async def credit_renter(
    renter_id: IdPath,
    body: Credit,
    session: SessionDep,
    now: NowDep,
    idempotency_key: Annotated[str | None, Header(max_length=100)] = None,
) -> Credited:
    renter = await _renter(session, renter_id)
    key = idempotency_key or body.idempotency_key
    if not key:
        raise BadRequest("Missing required fields: idempotency_key (or the Idempotency-Key header)")
    transaction_id, created = await topups.credit_renter(
        session,
        renter_id=renter.id,
        amount=body.amount_halala,
        reason=body.reason,
        idempotency_key=key,
        now=now,
    )
    available = await ledger.balance(session, Account.renter_available, renter.id)
    return Credited(
        renter_id=renter.id,
        amount_halala=body.amount_halala,
        transaction_id=transaction_id,
        duplicate=not created,
        balance_halala=available,
        balance_sar=sar_string(available),
    )


async def _provider(session: SessionDep, provider_id: int) -> Provider:
    provider = await providers.by_id(session, provider_id)
    if provider is None:
        raise ProviderNotFound()
    return provider


async def _renter(session: SessionDep, renter_id: int) -> Renter:
    renter = await renters.by_id(session, renter_id)
    if renter is None:
        raise RenterNotFound()
    return renter


async def _renter_one(session: SessionDep, renter: Renter) -> AdminRenterView:
    available = await ledger.balance(session, Account.renter_available, renter.id)
    held = await ledger.balance(session, Account.renter_held, renter.id)
    jobs = await job_repository.counts_by_renter(session, [renter.id])
    return _renter_view(renter, available=available, held=held, jobs=jobs[renter.id])


def _renter_view(renter: Renter, *, available: int, held: int, jobs: int) -> AdminRenterView:
    view = renter_service.renter_view(renter, available=available, held=held, jobs=jobs)
    return AdminRenterView(**view.model_dump(), phone=renter.phone)


@router.get("/model-prices", responses=_ERRORS, summary="Per-token /v1 prices by model")
async def model_prices(session: SessionDep, settings: SettingsDep) -> ModelPriceList:
    return await _price_list(session, settings.pricing)


@router.put(
    "/model-prices", responses=error_responses(400, 401, 403), summary="Set a model's per-token prices"
)
async def set_model_price(body: ModelPriceBody, session: SessionDep, now: NowDep) -> ModelPriceView:
    row = await token_prices.set_price(
        session,
        model=body.model,
        input_per_million=body.input_per_million_halala,
        output_per_million=body.output_per_million_halala,
        now=now,
    )
    return _price_view(row)


@router.delete(
    "/model-prices",
    responses=error_responses(400, 401, 403, 404),
    summary="Return a model to the default prices",
)
async def reset_model_price(
    session: SessionDep, settings: SettingsDep, model: Annotated[str, Query(min_length=1, max_length=200)]
) -> ModelPriceList:
    if not await token_prices.reset_price(session, model):
        raise NotFound("This model has no price of its own")
    return await _price_list(session, settings.pricing)


async def _price_list(session: AsyncSession, pricing: PricingSettings) -> ModelPriceList:
    default = ModelPriceView(
        model="*",
        input_per_million_halala=pricing.default_input_per_million,
        output_per_million_halala=pricing.default_output_per_million,
        updated_at=None,
    )
    rows = await token_prices.all_prices(session)
    return ModelPriceList(prices=[_price_view(row) for row in rows], default=default)


def _price_view(row: ModelPrice) -> ModelPriceView:
    return ModelPriceView(
        model=row.model,
        input_per_million_halala=row.input_per_million_halala,
        output_per_million_halala=row.output_per_million_halala,
        updated_at=iso(row.updated_at),
    )
