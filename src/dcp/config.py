"""The one settings object: every knob DCP reads from the environment (prefix ``DCP_``)."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from functools import cached_property
from pathlib import Path
from typing import Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import BaseModel, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from dcp import __version__
from dcp.kit.money import ceil_div

PLACEHOLDER_SECRETS = frozenset({"", "change-me", "changeme", "secret", "dev", "admin", "password", "test"})
MIN_SECRET_LENGTH = 32


class PricingSettings(BaseModel):
    """Per-minute prices in halala and the multipliers of the pricing classes (seed defaults)."""

    llm_inference: int = Field(15, ge=1)
    image_generation: int = Field(20, ge=1)
    vllm_serve: int = Field(20, ge=1)
    custom_container: int = Field(10, ge=1)
    # Multipliers in percent so that no float ever touches money.
    priority_percent: int = Field(120, ge=1)
    standard_percent: int = Field(100, ge=1)
    economy_percent: int = Field(90, ge=1)
    provider_share_percent: int = Field(75, ge=0, le=100)
    # Bounds on the per-minute prices a provider may set, in percent of the defaults above.
    provider_min_percent: int = Field(50, ge=1)
    provider_max_percent: int = Field(300, ge=1)
    # /v1 prices per million tokens for a model the admin has not priced.
    default_input_per_million: int = Field(100, ge=0)
    default_output_per_million: int = Field(300, ge=0)

    def per_minute(self, job_type: str) -> int:
        return int(getattr(self, job_type))

    def provider_bounds(self, job_type: str) -> tuple[int, int]:
        default = self.per_minute(job_type)
        return ceil_div(default * self.provider_min_percent, 100), default * self.provider_max_percent // 100


class MoyasarSettings(BaseModel):
    """The Moyasar payment gateway; online top-ups are off until ``secret_key`` is set."""

    api_base: str = "https://api.moyasar.com/v1"
    secret_key: str = ""
    webhook_secret: str = ""
    min_topup_halala: int = Field(1000, ge=100)
    max_topup_halala: int = Field(10_000_000, ge=100)


class DaemonSettings(BaseModel):
    """What the server tells daemons about versions in heartbeat answers."""

    latest_version: str = __version__
    min_version: str = __version__
    preload_model: str | None = Field(None, description="A model daemons should prepare ahead of demand")
    release_key_file: Path | None = Field(
        None,
        description="Ed25519 private key (PKCS#8 PEM, e.g. `openssl genpkey -algorithm ed25519`) that signs "
        "daemon updates; without it no updates are offered (development generates one in data_dir)",
    )


class JobSettings(BaseModel):
    """Dispatch and liveness of jobs."""

    lease_seconds: int = Field(60, ge=5, description="A claimed job returns to the queue if not renewed")
    queue_timeout_seconds: int = Field(900, ge=10, description="A job that never starts fails (refunded)")
    max_retries: int = Field(2, ge=0, le=10, description="Requeues after a lost provider before failing")
    sweep_interval_seconds: float = Field(2.0, gt=0)
    reliability_refresh_seconds: int = Field(
        60, ge=1, description="How often the providers' stored reliability (placement's order) is renewed"
    )
    long_poll_max_seconds: int = Field(25, ge=1, le=60)
    submit_batch_wait_seconds: float = Field(
        0.003,
        ge=0,
        le=1,
        description="A submit that finds no batch being written waits up to this long for others to share "
        "its transaction (less when none arrive; 0: write at once)",
    )
    approved_images: list[str] = Field(
        default_factory=lambda: ["dc1/general-worker:latest", "python:3.11-slim"],
        description="Container images custom_container jobs may use",
    )
    allow_container_network: bool = Field(False, description="Let renters ask for network access in scripts")


class GatewaySettings(BaseModel):
    """The OpenAI-compatible /v1 gateway."""

    requests_per_minute: int = Field(120, ge=1, description="Per renter key")
    tokens_per_minute: int = Field(
        200_000, ge=1, description="Per renter key, counted at the reserved worst case"
    )
    default_max_tokens: int = Field(512, ge=1)
    max_tokens_limit: int = Field(4096, ge=1)
    first_token_timeout_seconds: float = Field(30.0, gt=0)
    max_attempts: int = Field(3, ge=1, le=5, description="The first provider and up to two others")
    breaker_failures: int = Field(3, ge=1)
    breaker_open_seconds: float = Field(30.0, gt=0)
    pool_cache_seconds: float = Field(
        1.0, ge=0, description="How long a server process reuses the serving pool it read (links stay live)"
    )
    price_cache_seconds: float = Field(
        5.0, ge=0, description="How long a server process reuses a model's per-token price"
    )
    abandoned_hold_seconds: int = Field(
        1800,
        ge=1,
        description="The sweeper refunds a /v1 request's hold that nothing settled for this long (the server "
        "process serving it died); a request still running then is billed nothing",
    )
    abandoned_lookback_seconds: int = Field(
        7 * 86400, ge=1, description="How far back a starting server looks for such holds"
    )
    ledger_batch_max: int = Field(
        256,
        ge=1,
        description="Most requests whose settlements one write transaction commits",
    )
    settlement_batch_wait_seconds: float = Field(
        0.02,
        ge=0,
        le=1,
        description="A finished request's settlement and usage row, when no batch is being written, wait "
        "this long for others to share their transaction (after the answer: the caller never waits for it)",
    )
    allowance_halala: int = Field(
        1000,
        ge=1,
        description="What a server process holds of a renter's money at a time for their /v1 requests, which "
        "reserve their worst case from it in memory (more when one request needs more; all the renter has "
        "when that is less)",
    )
    allowance_idle_seconds: float = Field(
        5.0, gt=0, description="An allowance unused this long is handed back to its renter"
    )
    allowance_renew_seconds: float = Field(
        10.0, gt=0, description="How often a server process tells the database its allowances are in use"
    )
    allowance_expiry_seconds: int = Field(
        120,
        ge=1,
        description="The sweeper hands back an allowance not renewed for this long (its process died or "
        "stalled); requests of that process settled later are billed nothing",
    )

    @model_validator(mode="after")
    def _allowances_outlive_renewals(self) -> GatewaySettings:
        # An allowance in use must be renewed before the sweeper takes it for a dead process's.
        if self.allowance_expiry_seconds < 2 * self.allowance_renew_seconds:
            raise ValueError(
                "gateway.allowance_expiry_seconds must be at least twice allowance_renew_seconds"
            )
        return self


class LimitSettings(BaseModel):
    """Abuse limits on /api and the pages (the /v1 gateway has its own per-key limits)."""

    requests_per_minute_per_key: int = Field(600, ge=1, description="Per API key, admin token or web session")
    requests_per_minute_per_ip: int = Field(300, ge=1, description="Callers without a credential, per IP")
    signups_per_hour_per_ip: int = Field(30, ge=1, description="Renter and provider registrations")
    sign_ins_per_minute_per_ip: int = Field(10, ge=1, description="Attempts on the sign-in page")


class Settings(BaseSettings):
    """DCP configuration. Nested groups use ``__`` in the environment: ``DCP_PRICING__LLM_INFERENCE=15``."""

    model_config = SettingsConfigDict(env_prefix="DCP_", env_nested_delimiter="__", extra="ignore")

    env: Literal["development", "production"] = "development"
    data_dir: Path = Path(".dcp")
    database_url: str = ""
    secret_key: str = ""
    admin_token: str = ""
    host: str = "127.0.0.1"
    port: int = 8083
    public_url: str = ""
    redis_url: str = Field(
        "", description="redis://… to share rate limits between replicas; empty: in-process"
    )
    replica_url: str = Field(
        "",
        description="With several replicas: the address the others reach this one at (http://10.0.0.5:8083), "
        "so that /v1 and endpoint requests for a provider whose link is here are relayed here; empty: one "
        "replica",
    )

    heartbeat_online_seconds: int = Field(90, ge=5)
    cors_origins: list[str] = Field(
        default_factory=lambda: ["*"],
        description="Web origins whose pages may call /api and /v1 from a browser (keys in headers, never "
        'cookies); ["*"] for any, [] for none',
    )
    heartbeat_batch_wait_seconds: float = Field(
        0.05,
        ge=0,
        le=1,
        description="A heartbeat that finds no batch being written waits this long for others to share "
        "its transaction (0: write at once)",
    )
    auth_cache_seconds: float = Field(
        5.0,
        ge=0,
        description="How long an API key's holder is remembered; a key revoked on another replica works "
        "there at most this long (0: look every key up)",
    )
    telemetry_retention_days: int = Field(
        7, ge=1, description="Days of per-heartbeat samples kept for charts"
    )
    provider_auto_approve: bool = True
    starter_balance_halala: int = Field(0, ge=0)
    max_body_bytes: int = Field(1024 * 1024, ge=1024)
    body_timeout_seconds: float = Field(30.0, gt=0, description="A request body must arrive within this")
    max_header_bytes: int = Field(32 * 1024, ge=4096, description="All of a request's headers together")
    timezone: str = "Asia/Riyadh"

    pricing: PricingSettings = PricingSettings()
    daemon: DaemonSettings = DaemonSettings()
    moyasar: MoyasarSettings = MoyasarSettings()
    jobs: JobSettings = JobSettings()
    gateway: GatewaySettings = GatewaySettings()
    limits: LimitSettings = LimitSettings()

    @model_validator(mode="after")
    def _fill_defaults(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite+aiosqlite:///{self.data_dir / 'dcp.db'}"
        if not self.public_url:
            self.public_url = f"http://{self.host}:{self.port}"
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @cached_property
    def secret_bytes(self) -> bytes:
        return self.secret_key.encode()

    def problems(self) -> list[str]:
        """Reasons this configuration must not serve production traffic."""
        found = []
        for name in ("secret_key", "admin_token"):
            value: str = getattr(self, name)
            if value.lower() in PLACEHOLDER_SECRETS or len(value) < MIN_SECRET_LENGTH:
                found.append(
                    f"DCP_{name.upper()} is missing, a placeholder, or shorter than {MIN_SECRET_LENGTH}"
                )
        release_key = self.daemon.release_key_file
        if release_key is not None and not release_key.is_file():
            found.append(f"DCP_DAEMON__RELEASE_KEY_FILE names {release_key}, which is not a file")
        return found


class ConfigError(RuntimeError):
    """The configuration cannot be used as it is."""


def load_settings(*, announce: bool = True, **overrides: object) -> Settings:
    """Read settings (``overrides`` beat the environment); outside production, fill missing secrets
    from (or into) ``data_dir/secrets.json``."""
    settings = Settings(**overrides)  # type: ignore[arg-type]
    if settings.env == "production":
        if problems := settings.problems():
            raise ConfigError("refusing to start in production: " + "; ".join(problems))
        return settings
    stored = _local_secrets(settings.data_dir, announce=announce)
    daemon = settings.daemon
    if daemon.release_key_file is None:
        daemon = daemon.model_copy(update={"release_key_file": _local_release_key(settings.data_dir)})
    return settings.model_copy(
        update={
            "secret_key": settings.secret_key or stored["secret_key"],
            "admin_token": settings.admin_token or stored["admin_token"],
            "daemon": daemon,
        }
    )


def _local_secrets(data_dir: Path, *, announce: bool) -> dict[str, str]:
    path = data_dir / "secrets.json"
    if path.exists():
        loaded: dict[str, str] = json.loads(path.read_text())
        return loaded
    data_dir.mkdir(parents=True, exist_ok=True)
    created = {
        "secret_key": secrets.token_urlsafe(48),
        "admin_token": "dc1-admin-" + secrets.token_urlsafe(32),
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(created, handle)
    if announce:
        print(f"DCP admin token (shown once, kept in {path}): {created['admin_token']}")
    return created


def _local_release_key(data_dir: Path) -> Path:
    path = data_dir / "release-key.pem"
    with contextlib.suppress(FileExistsError):  # another process started at the same moment wrote it
        write_release_key(path)
    return path


def write_release_key(path: Path) -> None:
    """A new Ed25519 private key as PKCS#8 PEM (what ``openssl genpkey -algorithm ed25519`` writes),
    readable by its owner only."""
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
