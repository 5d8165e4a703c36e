"""Operators' pages: the dashboard with its charts; providers, renters and withdrawals come from beside it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup

from dcp.admin import service
from dcp.admin.schemas import DayActivity, GpuCount
from dcp.db.session import SessionDep
from dcp.deps import NowDep
from dcp.web import admin_accounts, admin_withdrawals
from dcp.web.charts import Series, bar_chart, line_chart
from dcp.web.context import AdminPage, Page

router = APIRouter(prefix="/admin", include_in_schema=False)


@router.get("", response_class=HTMLResponse)
async def dashboard(page: AdminPage, session: SessionDep, now: NowDep) -> Response:
    board = await service.dashboard(session, settings=page.settings, now=now)
    days = await service.daily_activity(session, settings=page.settings, now=now)
    return page.render(
        "admin/dashboard.html",
        board=board,
        stats=board.stats,
        jobs_chart=_jobs_chart(page, days),
        revenue_chart=_revenue_chart(page, days),
        gpu_chart=_gpu_chart(page, board.gpu_breakdown),
    )


def _day_labels(page: Page, days: Sequence[DayActivity]) -> list[str]:
    return [_day_label(page, one.day) for one in days]


def _day_label(page: Page, day: date) -> str:
    """``3 Mar`` / ``٣ مارس``: the day first in both languages, as people write it in each."""
    return f"{page.locale.number(day.day)} {page.t(f'admin.month_{day.month}')}"


def _jobs_chart(page: Page, days: Sequence[DayActivity]) -> Markup:
    return line_chart(
        [
            Series(page.t("admin.series_submitted"), [one.jobs_submitted for one in days]),
            Series(page.t("admin.series_completed"), [one.jobs_completed for one in days]),
        ],
        x_labels=_day_labels(page, days),
        title=page.t("admin.chart_jobs", days=page.locale.number(len(days))),
        y_format=lambda value: _count(page, value),
    )


def _revenue_chart(page: Page, days: Sequence[DayActivity]) -> Markup:
    return line_chart(
        [
            Series(page.t("admin.series_revenue"), [one.revenue_halala for one in days]),
            Series(page.t("admin.series_fees"), [one.fees_halala for one in days]),
        ],
        x_labels=_day_labels(page, days),
        title=page.t("admin.chart_revenue", days=page.locale.number(len(days))),
        y_format=lambda halala: _riyals(page, halala),
    )


def _gpu_chart(page: Page, breakdown: Sequence[GpuCount]) -> Markup:
    return bar_chart(
        [row.gpu_model for row in breakdown],
        [row.total for row in breakdown],
        title=page.t("admin.chart_gpus"),
        y_format=lambda value: _count(page, value),
    )


def _riyals(page: Page, halala: float) -> str:
    """An axis label in riyals without the currency (the chart's heading names it; the axis has no room)."""
    riyals = halala / 100
    return page.locale.number(riyals, places=0 if riyals == int(riyals) else 2)


def _count(page: Page, value: float) -> str:
    """An axis label for counts: whole where it is whole (the midpoint of a small axis may be 0.5)."""
    return page.locale.number(value, places=0 if value == int(value) else 1)


router.include_router(admin_accounts.router)
router.include_router(admin_withdrawals.router)
