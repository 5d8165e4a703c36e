"""Keyword-default helpers that create accounts through the real HTTP surface."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from tests.conftest import LiveServer

_counter = itertools.count(1)


@dataclass(frozen=True)
class Account:
    id: int
    key: str

    @property
    def renter_headers(self) -> dict[str, str]:
        return {"x-renter-key": self.key}

    @property
    def provider_headers(self) -> dict[str, str]:
        return {"x-provider-key": self.key}


async def register_renter(client: httpx.AsyncClient, **fields: Any) -> Account:
    n = next(_counter)
    body = {
        "name": f"Renter {n}",
        "email": f"renter{n}@example.sa",
        "organization": "Riyadh AI Lab",
        **fields,
    }
    answer = await client.post("/api/renters/register", json=body)
    assert answer.status_code == 201, answer.text
    return Account(answer.json()["renter_id"], answer.json()["api_key"])


async def register_provider(client: httpx.AsyncClient, **fields: Any) -> Account:
    n = next(_counter)
    body = {
        "name": f"Node {n}",
        "email": f"provider{n}@example.sa",
        "gpu_model": "RTX 4090",
        "os": "linux",
        **fields,
    }
    answer = await client.post("/api/providers/register", json=body)
    assert answer.status_code == 201, answer.text
    return Account(answer.json()["provider_id"], answer.json()["api_key"])


async def heartbeat(client: httpx.AsyncClient, provider: Account, **gpu: Any) -> httpx.Response:
    status = {
        "gpu_name": "NVIDIA RTX 4090",
        "gpu_vram_mib": 24564,
        "gpu_util_pct": 12,
        "temp_c": 51,
        "daemon_version": "0.1.0",
        **gpu,
    }
    return await client.post(
        "/api/providers/heartbeat",
        headers=provider.provider_headers,
        json={"gpu_status": status, "provider_hostname": "gpu-host-1"},
    )


async def credit(client: httpx.AsyncClient, admin: dict[str, str], renter: Account, amount: int) -> None:
    answer = await client.post(
        f"/api/admin/renters/{renter.id}/credit",
        headers={**admin, "Idempotency-Key": f"test-credit-{next(_counter)}"},
        json={"amount_halala": amount, "reason": "test top-up"},
    )
    assert answer.status_code == 200, answer.text


async def settled_work(
    database, *, renter_id: int, provider_id: int, held: int, cost: int, ref: str, now
) -> None:
    """Hold and settle one piece of work straight through the billing functions (until jobs exist)."""
    from dcp.billing import settlement

    async with database.writer() as session:
        await settlement.hold(session, renter_id=renter_id, work_ref=ref, amount=held, now=now)
        await settlement.settle(
            session,
            renter_id=renter_id,
            provider_id=provider_id,
            work_ref=ref,
            cost=cost,
            provider_percent=75,
            now=now,
        )
        await session.commit()


async def online_provider(client: httpx.AsyncClient, **fields: Any) -> Account:
    gpu = {key: fields.pop(key) for key in ("gpu_vram_mib", "gpu_name") if key in fields}
    provider = await register_provider(client, **fields)
    answer = await heartbeat(client, provider, **gpu)
    assert answer.status_code == 200, answer.text
    return provider


async def funded_renter(client: httpx.AsyncClient, admin: dict[str, str], amount: int = 10_000) -> Account:
    renter = await register_renter(client)
    await credit(client, admin, renter, amount)
    return renter


def llm_job(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "job_type": "llm_inference",
        "duration_minutes": 3,
        "params": {
            "model": "gemma3-270m",
            "prompt": "What is the capital of Saudi Arabia?",
            "max_tokens": 32,
        },
    }
    return {**body, **overrides}


async def submit(
    client: httpx.AsyncClient, renter: Account, body: dict[str, Any], **headers: str
) -> httpx.Response:
    return await client.post("/api/jobs/submit", headers={**renter.renter_headers, **headers}, json=body)


def completed_usage(
    *,
    request_id: str,
    renter_id: int,
    provider_id: int,
    cost: int,
    now: Any,
    model: str = "fake-model",
    prompt_tokens: int = 11,
    completion_tokens: int = 3,
    latency_ms: int = 5,
) -> dict[str, Any]:
    """The usage row of a /v1 request that completed, as the gateway writes it with its settlement."""
    return {
        "request_id": request_id,
        "renter_id": renter_id,
        "provider_id": provider_id,
        "model": model,
        "endpoint": "chat/completions",
        "status": "completed",
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "cost_halala": cost,
        "attempts": 1,
        "latency_ms": latency_ms,
        "error": None,
        "created_at": now,
    }


async def settled_money(server: LiveServer, renter: Account) -> dict[str, int]:
    """The renter's balance and held money once ``server`` settled the /v1 requests it took and handed its
    allowance back."""
    gateway = server.app.state.gateway
    await gateway.settle_all()
    await gateway.allowances.hand_back()
    async with httpx.AsyncClient(base_url=server.url) as http:
        found = (await http.get("/api/renters/balance", headers=renter.renter_headers)).json()
    return {"balance_halala": found["balance_halala"], "held_halala": found["held_halala"]}


async def waiting_copies(database, job_id: str, *, count: int) -> None:
    """``count`` more jobs like ``job_id`` waiting behind it, quoted at 0 (so they hold nothing)."""
    from sqlalchemy import insert, select

    from dcp.models import Job

    async with database.writer() as session:
        row = (await session.execute(select(Job.__table__).where(Job.job_id == job_id))).one()._asdict()
        del row["id"]
        copies = [{**row, "job_id": f"{job_id}-{n}", "cost_halala": 0} for n in range(count)]
        await session.execute(insert(Job), copies)
        await session.commit()
