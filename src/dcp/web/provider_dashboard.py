"""What the provider dashboard shows, from stored rows: live state, telemetry charts, earnings, jobs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from markupsafe import Markup
from sqlalchemy.ext.asyncio import AsyncSession

from dcp.billing import ledger, reports
from dcp.billing.ledger import Account
from dcp.billing.settlement import settlement_of
from dcp.config import Settings
from dcp.jobs import views
from dcp.jobs.schemas import JobView
from dcp.models import Provider, ProviderHeartbeat
from dcp.providers import repository
from dcp.providers.liveness import is_online
from dcp.web.charts import Series, bar_chart, line_chart
from dcp.web.i18n import Locale

TELEMETRY_WINDOW = timedelta(hours=24)
_SLOT = timedelta(minutes=15)  # samples are averaged per slot: 96 points a day, whatever the beat rate
_SLOTS = TELEMETRY_WINDOW // _SLOT
EARNINGS_DAYS = 14
RECENT_JOBS = 10
_MIB_PER_GIB = 1024


@dataclass(frozen=True)
class TelemetryCharts:
    utilisation: Markup
    temperature: Markup
    vram: Markup


@dataclass(frozen=True)
class LiveState:
    """The part of the dashboard that refreshes on its own."""

    online: bool
    charts: TelemetryCharts | None  # None: no sample in the last 24 h
    vram_used_mib: int | None  # from the newest sample
    vram_total_mib: int | None


@dataclass(frozen=True)
class Earnings:
    available: int
    payout_pending: int
    paid_out: int
    total_earned: int
    chart: Markup


@dataclass(frozen=True)
class JobLine:
    job: JobView
    share: int | None  # what the provider earned from it, once settled


async def live_state(
    session: AsyncSession, provider: Provider, *, settings: Settings, now: datetime, locale: Locale
) -> LiveState:
    end = _slot_floor(now) + _SLOT
    samples = await repository.telemetry(session, provider.id, since=end - TELEMETRY_WINDOW)
    return LiveState(
        online=is_online(provider, now=now, threshold_seconds=settings.heartbeat_online_seconds),
        charts=telemetry_charts(samples, end=end, locale=locale) if samples else None,
        vram_used_mib=samples[-1].vram_used_mib if samples else None,
        vram_total_mib=samples[-1].gpu_vram_mib if samples else None,
    )


def telemetry_charts(
    samples: Sequence[ProviderHeartbeat], *, end: datetime, locale: Locale
) -> TelemetryCharts:
    """Utilisation, temperature and VRAM used, averaged per 15 minutes, over the 24 h before ``end``."""
    start = end - TELEMETRY_WINDOW
    labels = [
        _localized(_at_zone(start + _SLOT * i, locale).strftime("%H:%M"), locale) for i in range(_SLOTS)
    ]
    temps = [s.temp_c for s in samples if s.temp_c is not None]
    totals = [s.gpu_vram_mib for s in samples if s.gpu_vram_mib]
    vram_max = max(totals) / _MIB_PER_GIB if totals else None

    def chart(
        title: str,
        pick: Callable[[ProviderHeartbeat], float | None],
        y_max: float | None,
        fmt: Callable[[float], str],
    ) -> Markup:
        series = Series(title, _averages(samples, pick, start=start))
        return line_chart([series], x_labels=labels, title=title, y_max=y_max, y_format=fmt)

    return TelemetryCharts(
        utilisation=chart(locale.t("provider.chart_util"), lambda s: s.gpu_util_pct, 100, locale.percent),
        # 0 to 100 °C unless hotter: a steady 60 °C should not fill the chart to the top.
        temperature=chart(
            locale.t("provider.chart_temp"), lambda s: s.temp_c, max([100, *temps]), locale.number
        ),
        vram=chart(
            locale.t("provider.chart_vram"),
            lambda s: s.vram_used_mib / _MIB_PER_GIB if s.vram_used_mib is not None else None,
            vram_max,
            lambda v: locale.number(v, places=1 if v and v < 10 else 0),
        ),
    )


def _averages(
    samples: Sequence[ProviderHeartbeat],
    pick: Callable[[ProviderHeartbeat], float | None],
    *,
    start: datetime,
) -> list[float | None]:
    sums = [0.0] * _SLOTS
    counts = [0] * _SLOTS
    for sample in samples:
        value = pick(sample)
        slot = (sample.received_at - start) // _SLOT
        if value is not None and 0 <= slot < _SLOTS:
            sums[slot] += value
            counts[slot] += 1
    return [total / count if count else None for total, count in zip(sums, counts, strict=True)]


async def earnings(session: AsyncSession, provider_id: int, *, now: datetime, locale: Locale) -> Earnings:
    """Balances as the earnings endpoint reports them, plus what was paid out, and the last days' chart."""
    zone = ZoneInfo(locale.timezone)
    today = now.astimezone(zone).date()
    days = [today - timedelta(days=back) for back in range(EARNINGS_DAYS - 1, -1, -1)]
    per_day = dict.fromkeys(days, 0)
    since = datetime.combine(days[0], time(), tzinfo=zone)
    for moment, amount in await reports.earnings_since(session, provider_id, since=since):
        day = moment.astimezone(zone).date()
        if day in per_day:
            per_day[day] += amount
    chart = bar_chart(
        [_localized(day.strftime("%d/%m"), locale) for day in days],
        [per_day[day] / 100 for day in days],
        title=locale.t("provider.chart_earnings"),
        y_format=lambda v: locale.number(v, places=2),
    )
    return Earnings(
        available=await ledger.balance(session, Account.provider_earnings, provider_id),
        payout_pending=await ledger.balance(session, Account.provider_payout_pending, provider_id),
        paid_out=await reports.paid_out(session, provider_id),
        total_earned=await reports.earned(session, provider_id),
        chart=chart,
    )


async def recent_jobs(session: AsyncSession, provider_id: int) -> tuple[list[JobLine], int]:
    jobs, total = await views.recent(session, provider_id=provider_id, limit=RECENT_JOBS)
    lines = []
    for job in jobs:
        settled = await settlement_of(session, job.job_id)
        lines.append(JobLine(job, settled.provider_share_halala if settled else None))
    return lines, total


def _slot_floor(moment: datetime) -> datetime:
    """The start of the 15-minute slot holding ``moment``: slots stay put between refreshes."""
    return moment - timedelta(seconds=moment.timestamp() % _SLOT.total_seconds())


def _at_zone(moment: datetime, locale: Locale) -> datetime:
    return moment.astimezone(ZoneInfo(locale.timezone))


def _localized(text: str, locale: Locale) -> str:
    """The digits of ``text`` as the page's language writes them."""
    return "".join(locale.number(int(char)) if char.isdigit() else char for char in text)
