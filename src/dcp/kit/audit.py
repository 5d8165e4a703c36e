"""Who is acting and from where, for the audit trail: set per request, read where money moves."""

from __future__ import annotations

from contextvars import ContextVar

# "renter:7", "provider:3", "admin", "anonymous" (a request before or without authentication), or "system"
# for the sweeper and other background work.
actor_var: ContextVar[str] = ContextVar("actor", default="system")
client_ip_var: ContextVar[str] = ContextVar("client_ip", default="-")


def acting_as(actor: str) -> None:
    """Called by authentication once it knows who the caller is."""
    actor_var.set(actor)
