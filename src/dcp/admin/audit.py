"""The audit trail of administrative actions: recorded by a middleware, listed at /api/admin/audit."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlalchemy import func, select
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dcp.auth import AdminDep
from dcp.db.engine import Database
from dcp.db.session import SessionDep
from dcp.kit.audit import actor_var, client_ip_var
from dcp.kit.clock import Clock, iso
from dcp.kit.errors import error_responses
from dcp.kit.fields import NoNul
from dcp.kit.http import request_id_var
from dcp.kit.pagination import PageDep
from dcp.models import AuditEvent

log = logging.getLogger("dcp.audit")
_ADMIN_PATHS = ("/api/admin/", "/api/dc1/admin/", "/admin/")
_READS = frozenset({"GET", "HEAD", "OPTIONS"})


class AdminAudit:
    """ASGI middleware: every administrative request that could change something is written down,
    refused ones included, after its answer is known (in a transaction of its own)."""

    def __init__(self, app: ASGIApp, *, db: Database, clock: Clock) -> None:
        self.app, self.db, self.clock = app, db, clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in _READS or not scope["path"].startswith(_ADMIN_PATHS):
            await self.app(scope, receive, send)
            return
        status = 500

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            await self._record(f"{scope['method']} {scope['path']}"[:200], status)

    async def _record(self, action: str, status: int) -> None:
        event = AuditEvent(
            at=self.clock.now(),
            actor=actor_var.get(),
            client_ip=client_ip_var.get(),
            action=action,
            status=status,
            request_id=request_id_var.get(),
        )
        try:
            async with self.db.writer() as session:
                session.add(event)
                await session.commit()
        except Exception:  # the action itself is done; a lost audit row must be seen, not crash the answer
            log.exception("could not record the audit event %s", action)


class AuditView(BaseModel):
    id: int
    at: str | None
    actor: str
    client_ip: str
    action: str
    status: int
    request_id: str


class AuditList(BaseModel):
    events: list[AuditView]
    total: int
    limit: int
    offset: int


router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[AdminDep])


@router.get(
    "/audit", responses=error_responses(400, 401, 403), summary="The audit trail of administrative actions"
)
async def audit_trail(
    session: SessionDep,
    page: PageDep,
    actor: Annotated[
        str | None, Query(max_length=40, description="Only this actor, e.g. admin"), NoNul
    ] = None,
) -> AuditList:
    query = select(AuditEvent)
    if actor:
        query = query.where(AuditEvent.actor == actor)
    total = (await session.execute(select(func.count()).select_from(query.subquery()))).scalar_one()
    rows = await session.execute(query.order_by(AuditEvent.id.desc()).limit(page.limit).offset(page.offset))
    return AuditList(
        events=[
            AuditView(
                id=e.id,
                at=iso(e.at),
                actor=e.actor,
                client_ip=e.client_ip,
                action=e.action,
                status=e.status,
                request_id=e.request_id,
            )
            for e in rows.scalars()
        ],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )
