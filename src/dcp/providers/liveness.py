"""The one rule for "is this provider online", used by listings, the dashboard and placement: a heartbeat
within the threshold, and no link of its daemon closed since that heartbeat (a daemon that died with its
link open counted as online for up to the whole threshold before)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, or_

from dcp.models import Provider


def online_since(now: datetime, threshold_seconds: int) -> datetime:
    return now - timedelta(seconds=threshold_seconds)


def is_online(provider: Provider, *, now: datetime, threshold_seconds: int) -> bool:
    seen, lost = provider.last_heartbeat_at, provider.link_lost_at
    return seen is not None and seen >= online_since(now, threshold_seconds) and (lost is None or seen > lost)


def online_clause(*, now: datetime, threshold_seconds: int) -> ColumnElement[bool]:
    return and_(
        Provider.last_heartbeat_at.is_not(None),
        Provider.last_heartbeat_at >= online_since(now, threshold_seconds),
        link_not_lost(),
    )


def link_not_lost() -> ColumnElement[bool]:
    """No link of the provider's daemon closed after its latest heartbeat (a new heartbeat, over a new link
    or over HTTP, counts it back in)."""
    return or_(Provider.link_lost_at.is_(None), Provider.last_heartbeat_at > Provider.link_lost_at)


def status_of(provider: Provider, *, now: datetime, threshold_seconds: int) -> str:
    """suspended, pending (approval), paused, online or offline."""
    online = is_online(provider, now=now, threshold_seconds=threshold_seconds)
    return status_named(provider.approval_status, paused=provider.paused, online=online)


def status_named(approval_status: str, *, paused: bool, online: bool) -> str:
    if approval_status != "approved":
        return approval_status
    if paused:
        return "paused"
    return "online" if online else "offline"
