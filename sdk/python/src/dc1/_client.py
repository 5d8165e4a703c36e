"""The synchronous client: ``dc1.Client(api_key=…, base_url=…)``."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx

from dc1 import _core
from dc1._exceptions import APIConnectionError, DC1Error, JobFailedError, TimeoutError
from dc1._models import Balance, Job, Output, Provider


class Client:
    """Renter, provider or admin access to DCP; retries only what the API says is retryable."""

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str = _core.DEFAULT_BASE_URL,
        admin_token: str | None = None,
        max_retries: int = 2,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            timeout=timeout,
            transport=transport,
            headers=_core.headers_for(api_key, admin_token),
        )
        self.max_retries = max_retries
        self.jobs = Jobs(self)
        self.providers = Providers(self)
        self.admin = Admin(self)

    def request(
        self, method: str, path: str, *, allow: tuple[int, ...] = (), **kwargs: Any
    ) -> httpx.Response:
        for attempt in range(self.max_retries + 1):
            try:
                response = self._http.request(method, path, **kwargs)
            except httpx.TransportError as exc:
                error: DC1Error = APIConnectionError(f"DCP is unreachable: {type(exc).__name__}")
            else:
                if response.is_success or response.status_code in allow:
                    return response
                error = _core.error_for(response)
            delay = _core.retry_delay(error, attempt) if not isinstance(error, APIConnectionError) else 1.0
            if delay is None or attempt == self.max_retries:
                raise error
            time.sleep(delay)
        raise AssertionError("unreachable")

    def me(self) -> dict[str, Any]:
        """The renter's (or, with a provider key, the provider's) profile."""
        path = "/api/providers/me" if "x-provider-key" in self._http.headers else "/api/renters/me"
        result: dict[str, Any] = self.request("GET", path).json()
        return result

    def balance(self) -> Balance:
        return Balance.from_api(self.request("GET", "/api/renters/balance").json())

    def earnings(self) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", "/api/providers/earnings").json()
        return result

    def request_withdrawal(self, amount_halala: int, iban: str) -> dict[str, Any]:
        body = {"amount_halala": amount_halala, "iban": iban}
        result: dict[str, Any] = self.request("POST", "/api/providers/withdrawals", json=body).json()[
            "withdrawal"
        ]
        return result

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class Providers:
    def __init__(self, client: Client) -> None:
        self._client = client

    def list(
        self, *, live_only: bool = True, min_vram_gb: int | None = None, gpu_model: str | None = None
    ) -> list[Provider]:
        params: dict[str, Any] = {"live_only": live_only, "limit": 200}
        params.update({k: v for k, v in {"min_vram_gb": min_vram_gb, "gpu_model": gpu_model}.items() if v})
        body = self._client.request("GET", "/api/renters/available-providers", params=params).json()
        return [Provider.from_api(item) for item in body["providers"]]


class Jobs:
    def __init__(self, client: Client) -> None:
        self._client = client

    def submit(
        self,
        job_type: str,
        params: dict[str, Any],
        *,
        duration_minutes: int,
        provider_id: int | None = None,
        max_duration_seconds: int | None = None,
        pricing_class: str | None = None,
        priority: int | None = None,
        gpu_requirements: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Job:
        """Submit a job. A retry carries the same idempotency key, so it never creates a second job."""
        body = _core.submit_body(
            job_type,
            params,
            duration_minutes=duration_minutes,
            provider_id=provider_id,
            max_duration_seconds=max_duration_seconds,
            pricing_class=pricing_class,
            priority=priority,
            gpu_requirements=gpu_requirements,
        )
        headers = {"idempotency-key": idempotency_key or _core.new_idempotency_key()}
        return Job.from_api(
            self._client.request("POST", "/api/jobs/submit", json=body, headers=headers).json()["job"]
        )

    def get(self, job_id: str) -> Job:
        return Job.from_api(self._client.request("GET", f"/api/jobs/{job_id}").json()["job"])

    def output(self, job_id: str) -> Output:
        """The result (``ready`` False while it runs); raises JobFailedError for a failed or cancelled job."""
        response = self._client.request("GET", f"/api/jobs/{job_id}/output", allow=(202,))
        body = response.json()
        return Output.from_api(body, ready=response.status_code == 200)

    def cancel(self, job_id: str) -> Job:
        return Job.from_api(self._client.request("POST", f"/api/jobs/{job_id}/cancel").json()["job"])

    def history(
        self, *, status: str | None = None, job_type: str | None = None, page_size: int = 50
    ) -> Iterator[Job]:
        """Every job, newest first, fetching pages as it goes."""
        offset = 0
        while True:
            params = {k: v for k, v in {"status": status, "job_type": job_type}.items() if v}
            body = self._client.request(
                "GET", "/api/jobs/history", params={**params, "limit": page_size, "offset": offset}
            ).json()
            yield from (Job.from_api(item) for item in body["jobs"])
            offset += len(body["jobs"])
            if not body["jobs"] or offset >= body["total"]:
                return

    def wait(self, job_id: str, *, timeout: float = 600.0, interval: float | None = None) -> Output:
        """Poll until the job ends (every 5 s, or 15 s for long jobs, as the seed advises), then output."""
        deadline = time.monotonic() + timeout
        job = self.get(job_id)
        every = interval if interval is not None else _core.poll_interval(job.job_type)
        while not job.done:
            if time.monotonic() + every > deadline:
                raise TimeoutError(f"Job {job_id} did not finish within {timeout} s")
            time.sleep(every)
            job = self.get(job_id)
        if job.status != "completed":
            raise JobFailedError(job.error or f"Job {job.status}", status=410, body=job.raw)
        return self.output(job_id)


class Admin:
    def __init__(self, client: Client) -> None:
        self._client = client

    def dashboard(self) -> dict[str, Any]:
        result: dict[str, Any] = self._client.request("GET", "/api/admin/dashboard").json()
        return result

    def withdrawals(self, status: str | None = None) -> dict[str, Any]:
        params = {"status": status} if status else {}
        result: dict[str, Any] = self._client.request("GET", "/api/admin/withdrawals", params=params).json()
        return result

    def approve_withdrawal(self, withdrawal_id: int) -> dict[str, Any]:
        result: dict[str, Any] = self._client.request(
            "POST", f"/api/admin/withdrawals/{withdrawal_id}/approve"
        ).json()["withdrawal"]
        return result
