"""Provider endpoints: register, me, heartbeat (its own router), pause, resume, rotate-key."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from dcp.auth import PROVIDER_KEY_SECURITY, CurrentProvider, ProviderKeyDigest, provider_key_digest
from dcp.billing import ledger, reports, statements
from dcp.billing.ledger import Account
from dcp.db.session import SessionDep
from dcp.deps import NowDep, SettingsDep
from dcp.jobs import views
from dcp.jobs.placement import reliability_percent
from dcp.kit.clock import iso
from dcp.kit.errors import error_responses
from dcp.kit.fast_route import FastRoute, fast
from dcp.kit.money import sar_string
from dcp.kit.pagination import PageDep
from dcp.models import Provider
from dcp.providers import service, uptime
from dcp.providers.downloads import install_command
from dcp.providers.heartbeats import HeartbeatWriter
from dcp.providers.liveness import is_online, status_of
from dcp.providers.schemas import (
    GpuStatus,
    GpuView,
    Heartbeat,
    HeartbeatAnswer,
    KeyBody,
    PauseAnswer,
    PriceUpdate,
    ProviderEarnings,
    ProviderMe,
    ProviderPrices,
    ProviderRegister,
    ProviderRegistered,
    ProviderView,
    RotatedKey,
)

router = APIRouter(prefix="/providers", tags=["providers"])
# The heartbeat has a router of its own, which the app includes ahead of all others: FastAPI finds a route by
# walking every included router (a third of a heartbeat's framework time behind /api's 15 routers), and
# every daemon beats every 30 s.
heartbeat_router = APIRouter(prefix="/providers", tags=["providers"], route_class=FastRoute)
_AUTH_ERRORS = error_responses(400, 401, 403)


@router.post(
    "/register",
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(400, 409, 413),
    summary="Register a provider and return its API key (shown once)",
)
async def register(
    body: ProviderRegister, session: SessionDep, settings: SettingsDep, now: NowDep
) -> ProviderRegistered:
    provider, key = await service.register(session, data=body, settings=settings, now=now)
    return ProviderRegistered(
        provider_id=provider.id,
        api_key=key,
        installer_url=service.installer_url(settings, provider.os),
        install_commands={
            os_name: install_command(os_name, server=settings.public_url, key=key)
            for os_name in ("linux", "windows")
        },
        approval_status=provider.approval_status,
        message=f"Welcome {provider.name}! Save your API key — it won't be shown again.",
    )


@router.get(
    "/me", responses=error_responses(401, 403), summary="The provider's profile, telemetry and earnings"
)
async def me(
    provider: CurrentProvider, session: SessionDep, settings: SettingsDep, now: NowDep
) -> ProviderMe:
    recent, _ = await views.recent(session, provider_id=provider.id)
    return ProviderMe(
        provider=await provider_view(session, provider, settings=settings, now=now),
        recent_jobs=recent,
        active_jobs=await views.active_on(session, provider.id),
    )


@heartbeat_router.post(
    "/heartbeat",
    response_model=HeartbeatAnswer,
    responses=_AUTH_ERRORS,
    summary="Daemon heartbeat with GPU telemetry",
    openapi_extra=PROVIDER_KEY_SECURITY,
)
@fast(provider_key_digest)
async def heartbeat(body: Heartbeat, key_digest: ProviderKeyDigest, request: Request) -> Response:
    # No session of its own: the beat is written, and its key looked up, with the others that arrive
    # meanwhile (heartbeats.py). The app's state is read directly, and the answer serialised as FastAPI
    # would (without validating again what the writer built): each step costs every heartbeat.
    state = request.app.state
    writer: HeartbeatWriter = state.heartbeats
    answer = await writer.record(key_digest, body, now=state.clock.now())
    return Response(answer.model_dump_json(), media_type="application/json")


@router.post("/pause", responses=_AUTH_ERRORS, summary="Stop receiving new jobs")
async def pause(
    provider: CurrentProvider, settings: SettingsDep, now: NowDep, body: KeyBody | None = None
) -> PauseAnswer:
    service.set_paused(provider, paused=True)
    return _pause_answer(provider, settings=settings, now=now)


@router.post("/resume", responses=_AUTH_ERRORS, summary="Receive jobs again")
async def resume(
    provider: CurrentProvider, settings: SettingsDep, now: NowDep, body: KeyBody | None = None
) -> PauseAnswer:
    service.set_paused(provider, paused=False)
    return _pause_answer(provider, settings=settings, now=now)


@router.post(
    "/rotate-key", responses=_AUTH_ERRORS, summary="Replace the provider's key; the old one stops working"
)
async def rotate_key(provider: CurrentProvider, session: SessionDep, settings: SettingsDep) -> RotatedKey:
    key = await service.rotate_key(session, provider=provider, settings=settings)
    return RotatedKey(
        api_key=key, message="Key rotated. Update your daemon's configuration with the new key."
    )


@router.get(
    "/earnings",
    response_model=ProviderEarnings,
    responses={**error_responses(400, 401, 403), **statements.CSV_RESPONSE},
    summary="Earnings and their statement (paged, filter by date, CSV with format=csv)",
)
async def earnings(
    provider: CurrentProvider, session: SessionDep, page: PageDep, query: statements.StatementFilterDep
) -> ProviderEarnings | Response:
    rows, total = await statements.lines(
        session, account=Account.provider_earnings, owner_id=provider.id, query=query, page=page
    )
    if query.csv:
        return statements.csv_download(rows, f"dcp-earnings-provider-{provider.id}.csv")
    available = await ledger.balance(session, Account.provider_earnings, provider.id)
    return ProviderEarnings(
        earnings_halala=available,
        earnings_sar=sar_string(available),
        payout_pending_halala=await ledger.balance(session, Account.provider_payout_pending, provider.id),
        total_earned_halala=await reports.earned(session, provider.id),
        lines=rows,
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


@router.get("/prices", responses=error_responses(401, 403), summary="The provider's per-minute prices")
async def prices(provider: CurrentProvider, settings: SettingsDep) -> ProviderPrices:
    return service.price_sheet(provider, settings.pricing)


@router.put("/prices", responses=_AUTH_ERRORS, summary="Set per-minute prices within the operator's bounds")
async def set_prices(body: PriceUpdate, provider: CurrentProvider, settings: SettingsDep) -> ProviderPrices:
    service.set_prices(provider, update=body, pricing=settings.pricing)
    return service.price_sheet(provider, settings.pricing)


def _pause_answer(provider: Provider, *, settings: SettingsDep, now: NowDep) -> PauseAnswer:
    state = status_of(provider, now=now, threshold_seconds=settings.heartbeat_online_seconds)
    return PauseAnswer(status=state, paused=provider.paused)


async def provider_view(
    session: SessionDep, provider: Provider, *, settings: SettingsDep, now: NowDep
) -> ProviderView:
    """The full view of one provider, for the provider itself and for admins."""
    threshold = settings.heartbeat_online_seconds
    earnings = await ledger.balance(session, Account.provider_earnings, provider.id)
    share = (await uptime.online_shares(session, [provider], now=now, threshold_seconds=threshold))[
        provider.id
    ]
    return ProviderView(
        id=provider.id,
        name=provider.name,
        email=provider.email,
        gpu_model=provider.gpu_model,
        os=provider.os,
        status=status_of(provider, now=now, threshold_seconds=threshold),
        is_online=is_online(provider, now=now, threshold_seconds=threshold),
        approval_status=provider.approval_status,
        paused=provider.paused,
        created_at=iso(provider.created_at),
        last_heartbeat=iso(provider.last_heartbeat_at),
        daemon_version=provider.daemon_version,
        hostname=provider.hostname,
        cached_models=provider.cached_models,
        gpu=GpuView(
            gpu_name=provider.gpu_name,
            gpu_vram_mib=provider.gpu_vram_mib,
            gpu_count=provider.gpu_count,
            gpus=[GpuStatus.model_validate(gpu) for gpu in provider.gpus],
            gpu_util_pct=provider.gpu_util_pct,
            temp_c=provider.temp_c,
        ),
        total_jobs=(await views.recent(session, provider_id=provider.id, limit=1))[1],
        reliability_pct=reliability_percent(provider, share),
        slots=provider.slots,
        earnings_halala=earnings,
        earnings_sar=sar_string(earnings),
        payout_pending_halala=await ledger.balance(session, Account.provider_payout_pending, provider.id),
    )
