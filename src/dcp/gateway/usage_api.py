"""Usage of the /v1 API, one row per request, for renters (their own) and admins (everyone's)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import ColumnElement, func, select

from dcp.auth import AdminDep, CurrentRenter
from dcp.db.session import SessionDep
from dcp.kit.clock import iso
from dcp.kit.errors import error_responses
from dcp.kit.pagination import Page, PageDep
from dcp.models import GatewayRequest

renter_router = APIRouter(prefix="/renters", tags=["renters"])
admin_router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[AdminDep])


class UsageRow(BaseModel):
    request_id: str
    renter_id: int
    provider_id: int | None
    model: str
    endpoint: str
    status: str
    prompt_tokens: int
    completion_tokens: int
    cost_halala: int
    attempts: int
    latency_ms: int
    error: str | None
    created_at: str | None


class UsageList(BaseModel):
    requests: list[UsageRow]
    total: int
    limit: int
    offset: int


@renter_router.get("/usage", responses=error_responses(400, 401, 403), summary="The renter's /v1 requests")
async def renter_usage(renter: CurrentRenter, session: SessionDep, page: PageDep) -> UsageList:
    return await _usage(session, page, [GatewayRequest.renter_id == renter.id])


@admin_router.get("/usage", responses=error_responses(400, 401, 403), summary="Every /v1 request")
async def admin_usage(session: SessionDep, page: PageDep) -> UsageList:
    return await _usage(session, page, [])


async def _usage(session: SessionDep, page: Page, where: list[ColumnElement[bool]]) -> UsageList:
    query = select(GatewayRequest).where(*where)
    total = (await session.execute(select(func.count()).select_from(query.subquery()))).scalar_one()
    rows = await session.execute(
        query.order_by(GatewayRequest.id.desc()).limit(page.limit).offset(page.offset)
    )
    return UsageList(
        requests=[
            UsageRow(
                **{name: getattr(row, name) for name in UsageRow.model_fields if name != "created_at"},
                created_at=iso(row.created_at),
            )
            for row in rows.scalars()
        ],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )
