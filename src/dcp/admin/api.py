"""Admin endpoints: dashboard, providers, renters, credits, key rotation."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query
from sqlalchemy.ext.asyncio import AsyncSession

from dcp.admin import service
from dcp.admin.schemas import (
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
from dcp.admin.service import ApprovalStatus, RenterStatus
from dcp.auth import AdminDep
from dcp.billing import token_prices
from dcp.config import PricingSettings
from dcp.db.session import SessionDep
from dcp.deps import NowDep, SettingsDep
from dcp.kit.clock import iso
from dcp.kit.errors import BadRequest, NotFound, error_responses
from dcp.kit.fields import IdPath, NoNul
from dcp.kit.pagination import PageDep
from dcp.models import ModelPrice
from dcp.providers import service as provider_service
from dcp.providers.api import provider_view
from dcp.providers.schemas import RotatedKey
from dcp.renters import service as renter_service

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[AdminDep])
_ERRORS = error_responses(401, 403)
_ONE_ERRORS = error_responses(400, 401, 403, 404)
SearchText = Annotated[
    str | None, Query(max_length=100, description="Substring of name, email, GPU or org"), NoNul
]


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
    approval_status: ApprovalStatus | None = None,
) -> ProviderList:
    return await service.provider_list(
        session, settings=settings, now=now, page=page, search=q, approval_status=approval_status
    )


@router.get("/providers/{provider_id}", responses=_ONE_ERRORS, summary="One provider")
async def get_provider(
    provider_id: IdPath, session: SessionDep, settings: SettingsDep, now: NowDep
) -> ProviderOne:
    provider = await service.find_provider(session, provider_id)
    return ProviderOne(provider=await provider_view(session, provider, settings=settings, now=now))


@router.post("/providers/{provider_id}/approve", responses=_ONE_ERRORS, summary="Approve a provider for jobs")
async def approve_provider(
    provider_id: IdPath, session: SessionDep, settings: SettingsDep, now: NowDep
) -> ProviderOne:
    provider = await service.set_approval(session, provider_id=provider_id, status="approved")
    return ProviderOne(provider=await provider_view(session, provider, settings=settings, now=now))


@router.post("/providers/{provider_id}/suspend", responses=_ONE_ERRORS, summary="Suspend a provider")
async def suspend_provider(
    provider_id: IdPath, session: SessionDep, settings: SettingsDep, now: NowDep
) -> ProviderOne:
    provider = await service.set_approval(session, provider_id=provider_id, status="suspended")
    return ProviderOne(provider=await provider_view(session, provider, settings=settings, now=now))


@router.post("/providers/{provider_id}/rotate-key", responses=_ONE_ERRORS, summary="Issue a new provider key")
async def rotate_provider_key(provider_id: IdPath, session: SessionDep, settings: SettingsDep) -> RotatedKey:
    provider = await service.find_provider(session, provider_id)
    key = await provider_service.rotate_key(session, provider=provider, settings=settings)
    return RotatedKey(
        api_key=key, message=f"New key for provider {provider.id}; the old key no longer works."
    )


@router.get("/renters", responses=error_responses(400, 401, 403), summary="List and search renters")
async def list_renters(
    session: SessionDep,
    page: PageDep,
    q: SearchText = None,
    status: RenterStatus | None = None,
) -> RenterList:
    return await service.renter_list(session, page=page, search=q, status=status)


@router.get("/renters/{renter_id}", responses=_ONE_ERRORS, summary="One renter")
async def get_renter(renter_id: IdPath, session: SessionDep) -> RenterOne:
    return RenterOne(renter=await service.renter_one(session, await service.find_renter(session, renter_id)))


@router.post("/renters/{renter_id}/suspend", responses=_ONE_ERRORS, summary="Suspend a renter")
async def suspend_renter(renter_id: IdPath, session: SessionDep) -> RenterOne:
    renter = await service.set_renter_status(session, renter_id=renter_id, status="suspended")
    return RenterOne(renter=await service.renter_one(session, renter))


@router.post("/renters/{renter_id}/activate", responses=_ONE_ERRORS, summary="Lift a renter's suspension")
async def activate_renter(renter_id: IdPath, session: SessionDep) -> RenterOne:
    renter = await service.set_renter_status(session, renter_id=renter_id, status="active")
    return RenterOne(renter=await service.renter_one(session, renter))


@router.post("/renters/{renter_id}/rotate-key", responses=_ONE_ERRORS, summary="Issue a new renter key")
async def rotate_renter_key(renter_id: IdPath, session: SessionDep, settings: SettingsDep) -> RotatedKey:
    renter = await service.find_renter(session, renter_id)
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
    key = idempotency_key or body.idempotency_key
    if not key:
        await service.find_renter(session, renter_id)  # an unknown renter answers 404 first
        raise BadRequest("Missing required fields: idempotency_key (or the Idempotency-Key header)")
    return await service.credit_renter(
        session,
        renter_id=renter_id,
        amount=body.amount_halala,
        reason=body.reason,
        idempotency_key=key,
        now=now,
    )


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
    session: SessionDep,
    settings: SettingsDep,
    model: Annotated[str, Query(min_length=1, max_length=200), NoNul],
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
