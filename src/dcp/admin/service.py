"""The admin dashboard, computed from real rows and the ledger."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Select, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from dcp.admin.schemas import Dashboard, GpuCount, RecentHeartbeat, Signup, Stats
from dcp.billing import ledger, reports
from dcp.billing.ledger import Account
from dcp.config import Settings
from dcp.kit.clock import iso
from dcp.models import Job, Provider, Renter
from dcp.models.job import OPEN_STATUSES
from dcp.providers.liveness import is_online, online_clause

RECENT = 10


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
