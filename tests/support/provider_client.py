"""A small in-test provider: claims jobs, checks their signatures, reports like the daemon will."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from dcp.kit.signing import signing_key_for, verify
from tests.support.factories import Account


@dataclass
class Leased:
    job_id: str
    lease_token: str
    spec: dict[str, Any]


class TestProvider:
    __test__ = False  # not a test class

    def __init__(self, client: httpx.AsyncClient, account: Account) -> None:
        self.client = client
        self.account = account

    @property
    def headers(self) -> dict[str, str]:
        return self.account.provider_headers

    async def claim(self, wait: int = 0) -> Leased | None:
        answer = await self.client.get(
            "/api/providers/jobs/next", headers=self.headers, params={"wait": wait}
        )
        if answer.status_code == 204:
            return None
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert verify(body["spec"], body["signature"], signing_key_for(self.account.key)), "bad signature"
        return Leased(body["spec"]["job_id"], body["spec"]["lease_token"], body["spec"])

    async def start(self, leased: Leased) -> httpx.Response:
        return await self.client.post(
            f"/api/providers/jobs/{leased.job_id}/start",
            headers=self.headers,
            json={"lease_token": leased.lease_token},
        )

    async def events(self, leased: Leased, **body: Any) -> httpx.Response:
        return await self.client.post(
            f"/api/providers/jobs/{leased.job_id}/events",
            headers=self.headers,
            json={"lease_token": leased.lease_token, **body},
        )

    async def result(self, leased: Leased, **body: Any) -> httpx.Response:
        payload = {"lease_token": leased.lease_token, "status": "completed", **body}
        return await self.client.post(
            f"/api/providers/jobs/{leased.job_id}/result", headers=self.headers, json=payload
        )
