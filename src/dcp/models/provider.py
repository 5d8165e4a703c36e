"""Providers (GPU sellers) and the telemetry samples their daemons send."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from dcp.db.base import Base
from dcp.db.types import BigId, UTCDateTime


class Provider(Base):
    __tablename__ = "providers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str] = mapped_column(String(254), unique=True)
    phone: Mapped[str | None] = mapped_column(String(20))
    gpu_model: Mapped[str] = mapped_column(String(100))
    os: Mapped[str] = mapped_column(String(16))
    key_digest: Mapped[str] = mapped_column(String(64), unique=True)
    # pending → approved ⇄ suspended; paused is the provider's own switch, separate from approval.
    approval_status: Mapped[str] = mapped_column(String(16), default="pending")
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    first_heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The latest telemetry, copied from the newest heartbeat for cheap listing.
    gpu_name: Mapped[str | None] = mapped_column(String(100))
    gpu_vram_mib: Mapped[int | None] = mapped_column(Integer)
    gpu_count: Mapped[int] = mapped_column(Integer, default=0)
    gpu_util_pct: Mapped[int | None] = mapped_column(Integer)
    temp_c: Mapped[int | None] = mapped_column(Integer)
    daemon_version: Mapped[str | None] = mapped_column(String(32))
    python_version: Mapped[str | None] = mapped_column(String(32))
    os_info: Mapped[str | None] = mapped_column(String(200))
    hostname: Mapped[str | None] = mapped_column(String(200))
    cached_models: Mapped[list[str]] = mapped_column(JSON, default=list)
    gpus: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # Per-minute prices the provider set for itself (job type → halala); absent types use the defaults.
    prices: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    # Task specs are signed with this key; the daemon derives the same key from its API key.
    signing_key: Mapped[str] = mapped_column(String(64))
    slots: Mapped[int] = mapped_column(Integer, default=1)
    # The /v1 serving pool: what the daemon's engine serves, whether it is ready, how many at once.
    serving_models: Mapped[list[str]] = mapped_column(JSON, default=list)
    serving_ready: Mapped[bool] = mapped_column(Boolean, default=False)
    serving_concurrency: Mapped[int] = mapped_column(Integer, default=1)
    serving_context: Mapped[int] = mapped_column(Integer, default=4096)
    jobs_completed: Mapped[int] = mapped_column(Integer, default=0)
    jobs_lost: Mapped[int] = mapped_column(Integer, default=0)
    # reliability_percent as the sweeper last computed it (every minute): placement walks this index
    # instead of scoring every online provider. A new provider starts at 100, as its live score does.
    reliability: Mapped[int] = mapped_column(Integer, default=100, index=True)
    # The daemon's live link (WebSocket) and when its last one closed: a provider whose link closed after its
    # latest heartbeat is offline at once, not only once that heartbeat is older than the threshold.
    link_id: Mapped[str | None] = mapped_column(String(32))
    link_lost_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The replica that holds the link (its DCP_REPLICA_URL; None with one replica): requests for this
    # provider arriving at another replica are relayed there.
    link_replica: Mapped[str | None] = mapped_column(String(300))


class ProviderHeartbeat(Base):
    """One telemetry sample; kept for charts, liveness history and reliability."""

    __tablename__ = "provider_heartbeats"
    __table_args__ = (Index("ix_provider_heartbeats_provider_at", "provider_id", "received_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id", ondelete="CASCADE"))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    gpu_util_pct: Mapped[int | None] = mapped_column(Integer)
    temp_c: Mapped[int | None] = mapped_column(Integer)
    gpu_vram_mib: Mapped[int | None] = mapped_column(Integer)
    vram_used_mib: Mapped[int | None] = mapped_column(Integer)
    power_w: Mapped[int | None] = mapped_column(Integer)


class ProviderUptime(Base):
    """Seconds a provider was online per UTC day: the online share of its reliability score."""

    __tablename__ = "provider_uptime"

    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id", ondelete="CASCADE"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    seconds: Mapped[int] = mapped_column(Integer, default=0)
