"""Top-up endpoints for renters, and the gateway's webhook."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request, status
from sqlalchemy import func, select

from dcp.auth import CurrentRenter
from dcp.db.session import SessionDep, end_transaction
from dcp.deps import NowDep, SettingsDep
from dcp.kit.clock import iso
from dcp.kit.errors import BadRequest, error_responses
from dcp.kit.money import sar_string
from dcp.kit.pagination import PageDep
from dcp.models import Topup
from dcp.payments import service
from dcp.payments.errors import BadWebhookSecret, GatewayUnavailable, TopupsDisabled, UnknownTopup
from dcp.payments.gateway import GatewayError, PaymentGateway, UnknownPayment
from dcp.payments.schemas import MoyasarEvent, TopupCreate, TopupList, TopupOne, TopupView, WebhookAnswer

log = logging.getLogger("dcp.payments")
renter_router = APIRouter(prefix="/renters", tags=["renters"])
webhook_router = APIRouter(prefix="/payments", tags=["payments"])


def _gateway(request: Request) -> PaymentGateway:
    gateway: PaymentGateway | None = request.app.state.payment_gateway
    if gateway is None:
        raise TopupsDisabled()
    return gateway


@renter_router.post(
    "/topups",
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(400, 401, 403, 409, 502),
    summary="Start an online top-up; pay on the returned payment_url",
)
async def create_topup(
    body: TopupCreate,
    renter: CurrentRenter,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
) -> TopupOne:
    topup = await service.start_topup(
        session,
        gateway=request.app.state.payment_gateway,
        renter_id=renter.id,
        amount_halala=body.amount_halala,
        settings=settings,
        now=now,
    )
    return TopupOne(topup=_view(topup))


@renter_router.get("/topups", responses=error_responses(400, 401, 403), summary="The renter's online top-ups")
async def list_topups(renter: CurrentRenter, session: SessionDep, page: PageDep) -> TopupList:
    query = select(Topup).where(Topup.renter_id == renter.id)
    total = (await session.execute(select(func.count()).select_from(query.subquery()))).scalar_one()
    rows = await session.execute(query.order_by(Topup.id.desc()).limit(page.limit).offset(page.offset))
    return TopupList(
        topups=[_view(t) for t in rows.scalars()], total=total, limit=page.limit, offset=page.offset
    )


@webhook_router.post(
    "/moyasar/webhook",
    responses=error_responses(400, 401, 404, 409, 502),
    summary="Moyasar's payment webhook (verified by its secret token, then by re-reading the payment)",
)
async def moyasar_webhook(
    body: MoyasarEvent, request: Request, session: SessionDep, now: NowDep
) -> WebhookAnswer:
    gateway = _gateway(request)
    if not gateway.webhook_secret_matches(body.secret_token):
        raise BadWebhookSecret()
    if body.type != "payment_paid" or body.data.invoice_id is None:
        return WebhookAnswer(credited=False)
    topup = await service.by_invoice(session, body.data.invoice_id)
    if topup is None:
        raise UnknownTopup()
    if topup.status == "paid":
        if body.data.id != topup.payment_id:  # the invoice paid twice: money came that no one credits
            log.warning(
                "top-up %s (invoice %s) is paid by payment %s; another payment of it, %s, was not credited",
                topup.id,
                topup.invoice_id,
                topup.payment_id,
                body.data.id,
            )
        return WebhookAnswer(credited=False)
    await end_transaction(session)
    try:
        payment = await gateway.fetch_payment(body.data.id)
    except UnknownPayment as exc:
        raise BadRequest("The gateway does not know this payment") from exc
    except GatewayError as exc:
        raise GatewayUnavailable() from exc
    credited = await service.credit_paid(session, topup=topup, payment=payment, now=now)
    return WebhookAnswer(credited=credited)


def _view(topup: Topup) -> TopupView:
    return TopupView(
        id=topup.id,
        amount_halala=topup.amount_halala,
        amount_sar=sar_string(topup.amount_halala),
        status=topup.status,
        payment_url=topup.payment_url,
        created_at=iso(topup.created_at),
        paid_at=iso(topup.paid_at),
    )
