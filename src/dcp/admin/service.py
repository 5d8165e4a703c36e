"""Operators' work: the dashboard and its daily figures, approving providers, renters' status and credits."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from dcp.admin import repository
from dcp.admin.schemas import (
    AdminRenterView,
    Credited,
    Dashboard,
    DayActivity,
    GpuCount,
    ProviderList,
    RecentHeartbeat,
    RenterList,
    Signup,
    Stats,
)
from dcp.billing import ledger, reports, topups
from dcp.billing.ledger import Account
from dcp.config import Settings
from dcp.jobs import repository as job_repository
from dcp.kit.clock import iso
from dcp.kit.money import sar_string
from dcp.kit.pagination import Page
from dcp.models import Job, Provider, Renter
from dcp.models.job import OPEN_STATUSES
from dcp.providers import repository as providers
from dcp.providers.api import provider_view
from dcp.providers.errors import ProviderNotFound
from dcp.providers.liveness import is_online, online_clause
from dcp.renters import repository as renters
from dcp.renters import service as renter_service
from dcp.renters.errors import RenterNotFound

RECENT = 10
ACTIVITY_DAYS = 30
ApprovalStatus = Literal["pending", "approved", "suspended"]
RenterStatus = Literal["active", "suspended"]


def start_of_day(now: datetime, timezone: str) -> datetime:
    """Midnight of ``now``'s day in the operators' time zone (Asia/Riyadh by default)."""
    local = now.astimezone(ZoneInfo(timezone))
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


async def dashboard(session: AsyncSession, *, settings: Settings, now: datetime) -> Dashboard:
    threshold = settings.heartbeat_online_seconds
    online = online_clause(now=now, threshold_seconds=threshold)
    total_providers = await _count(session, select(func.count(Provider.id)))
    online_now = await _count(session, select(func.count(Provider.id)).where(online))
    midnight = start_of_day(now, settings.timezone)
    all_time = await reports.revenue(session)
    today = await reports.revenue(session, since=midnight)
    jobs = await _job_counts(session)
    stats = Stats(
        total_providers=total_providers,
        online_now=online_now,
        offline=total_providers - online_now,
        total_renters=await _count(session, select(func.count(Renter.id))),
        active_renters=await reports.active_renter_count(session, since=now - timedelta(days=30)),
        total_renter_balance_halala=await ledger.total(session, Account.renter_available),
        total_jobs=jobs.get("total", 0),
        completed_jobs=jobs.get("completed", 0),
        failed_jobs=jobs.get("failed", 0),
        active_jobs=jobs.get("active", 0),
        total_revenue_halala=all_time.gross,
        total_dc1_fees_halala=all_time.fees,
        today_revenue_halala=today.gross,
        today_dc1_fees_halala=today.fees,
        today_jobs=await _count(session, select(func.count(Job.id)).where(Job.submitted_at >= midnight)),
        timestamp=iso(now) or "",
    )
    return Dashboard(
        stats=stats,
        gpu_breakdown=await _gpu_breakdown(session, online=online),
        recent_signups=await _recent_signups(session),
        recent_heartbeats=await _recent_heartbeats(session, now=now, threshold=threshold),
    )


async def _count(session: AsyncSession, query: Select[int]) -> int:
    return int((await session.execute(query)).scalar_one())


async def _job_counts(session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(select(Job.status, func.count(Job.id)).group_by(Job.status))
    by_status = {status: int(count) for status, count in rows}
    return {
        "total": sum(by_status.values()),
        "completed": by_status.get("completed", 0),
        "failed": by_status.get("failed", 0),
        "active": sum(by_status.get(status, 0) for status in OPEN_STATUSES),
    }


async def _gpu_breakdown(session: AsyncSession, *, online: object) -> list[GpuCount]:
    model = func.coalesce(Provider.gpu_name, Provider.gpu_model)
    rows = await session.execute(
        select(model, func.count(Provider.id), func.sum(case((online, 1), else_=0)))  # type: ignore[arg-type]
        .group_by(model)
        .order_by(func.count(Provider.id).desc(), model)
    )
    return [GpuCount(gpu_model=name, total=total, online=int(up or 0)) for name, total, up in rows]


async def _recent_signups(session: AsyncSession) -> list[Signup]:
    providers = await session.execute(select(Provider).order_by(Provider.created_at.desc()).limit(RECENT))
    renters = await session.execute(select(Renter).order_by(Renter.created_at.desc()).limit(RECENT))
    both = [("provider", p) for p in providers.scalars()] + [("renter", r) for r in renters.scalars()]
    both.sort(key=lambda pair: pair[1].created_at, reverse=True)
    return [
        Signup(type=kind, id=row.id, name=row.name, email=row.email, created_at=iso(row.created_at))
        for kind, row in both[:RECENT]
    ]


async def _recent_heartbeats(
    session: AsyncSession, *, now: datetime, threshold: int
) -> list[RecentHeartbeat]:
    found = await session.execute(
        select(Provider)
        .where(Provider.last_heartbeat_at.is_not(None))
        .order_by(Provider.last_heartbeat_at.desc())
        .limit(RECENT)
    )
    return [
        RecentHeartbeat(
            provider_id=p.id,
            name=p.name,
            gpu_name=p.gpu_name,
            gpu_util_pct=p.gpu_util_pct,
            temp_c=p.temp_c,
            last_heartbeat=iso(p.last_heartbeat_at),
            is_online=is_online(p, now=now, threshold_seconds=threshold),
        )
        for p in found.scalars()
    ]


async def daily_activity(
    session: AsyncSession, *, settings: Settings, now: datetime, days: int = ACTIVITY_DAYS
) -> list[DayActivity]:
    """The last ``days`` days (today last), each a whole day in the operators' time zone."""
    zone = ZoneInfo(settings.timezone)
    today = start_of_day(now, settings.timezone).date()
    dates = [today - timedelta(days=back) for back in range(days - 1, -1, -1)]
    starts = [datetime.combine(day, time(), tzinfo=zone) for day in dates]
    submitted = await repository.jobs_per_day(session, starts)
    completed = await repository.jobs_per_day(session, starts, completed=True)
    revenue = await repository.revenue_per_day(session, starts)
    nothing = reports.Revenue(gross=0, fees=0)
    return [
        DayActivity(
            day=day,
            jobs_submitted=submitted.get(index, 0),
            jobs_completed=completed.get(index, 0),
            revenue_halala=revenue.get(index, nothing).gross,
            fees_halala=revenue.get(index, nothing).fees,
        )
        for index, day in enumerate(dates)
    ]


async def provider_list(
    session: AsyncSession,
    *,
    settings: Settings,
    now: datetime,
    page: Page,
    search: str | None = None,
    approval_status: ApprovalStatus | None = None,
) -> ProviderList:
    where: list[ColumnElement[bool]] = []
    if search:
        where.append(providers.search_clause(search))
    if approval_status:
        where.append(Provider.approval_status == approval_status)
    found, total = await providers.listing(session, where=where, limit=page.limit, offset=page.offset)
    views = [await provider_view(session, p, settings=settings, now=now) for p in found]
    return ProviderList(providers=views, total=total, limit=page.limit, offset=page.offset)


async def find_provider(session: AsyncSession, provider_id: int) -> Provider:
    provider = await providers.by_id(session, provider_id)
    if provider is None:
        raise ProviderNotFound()
    return provider


async def set_approval(session: AsyncSession, *, provider_id: int, status: ApprovalStatus) -> Provider:
    """Approve a provider for jobs, or suspend it (its daemon hears so on its next heartbeat)."""
    provider = await find_provider(session, provider_id)
    provider.approval_status = status
    return provider


async def renter_list(
    session: AsyncSession, *, page: Page, search: str | None = None, status: RenterStatus | None = None
) -> RenterList:
    where: list[ColumnElement[bool]] = []
    if search:
        where.append(renters.search_clause(search))
    if status:
        where.append(Renter.status == status)
    found, total = await renters.listing(session, where=where, limit=page.limit, offset=page.offset)
    ids = [r.id for r in found]
    available = await ledger.balances(session, Account.renter_available, ids)
    held = await ledger.balances(session, Account.renter_held, ids)
    jobs = await job_repository.counts_by_renter(session, ids)
    views = [_renter_view(r, available=available[r.id], held=held[r.id], jobs=jobs[r.id]) for r in found]
    return RenterList(renters=views, total=total, limit=page.limit, offset=page.offset)


async def find_renter(session: AsyncSession, renter_id: int) -> Renter:
    renter = await renters.by_id(session, renter_id)
    if renter is None:
        raise RenterNotFound()
    return renter


async def renter_one(session: AsyncSession, renter: Renter) -> AdminRenterView:
    available = await ledger.balance(session, Account.renter_available, renter.id)
    held = await ledger.balance(session, Account.renter_held, renter.id)
    jobs = await job_repository.counts_by_renter(session, [renter.id])
    return _renter_view(renter, available=available, held=held, jobs=jobs[renter.id])


def _renter_view(renter: Renter, *, available: int, held: int, jobs: int) -> AdminRenterView:
    view = renter_service.renter_view(renter, available=available, held=held, jobs=jobs)
    return AdminRenterView(**view.model_dump(), phone=renter.phone)


async def set_renter_status(session: AsyncSession, *, renter_id: int, status: RenterStatus) -> Renter:
    """Suspend a renter (its key and web sessions stop working) or lift the suspension."""
    renter = await find_renter(session, renter_id)
    renter.status = status
    return renter


async def credit_renter(
    session: AsyncSession, *, renter_id: int, amount: int, reason: str, idempotency_key: str, now: datetime
) -> Credited:
    """Add money to a renter's balance once per idempotency key (a repeat answers the first credit)."""
    renter = await find_renter(session, renter_id)
    transaction_id, created = await topups.credit_renter(
        session,
        renter_id=renter.id,
        amount=amount,
        reason=reason,
        idempotency_key=idempotency_key,
        now=now,
    )
    available = await ledger.balance(session, Account.renter_available, renter.id)
    return Credited(
        renter_id=renter.id,
        amount_halala=amount,
        transaction_id=transaction_id,
        duplicate=not created,
        balance_halala=available,
        balance_sar=sar_string(available),
    )
