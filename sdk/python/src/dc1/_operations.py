"""Every API call written once, as an operation (a generator of Calls and Sleeps) both clients perform."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import httpx

from dc1._core import Call, Operation, Sleep, new_idempotency_key, origin, poll_interval
from dc1._exceptions import APIConnectionError, DC1Error, ProviderUnavailableError, TimeoutError
from dc1._models import Balance, Job, Output, Page, Provider
from dc1._params import SubmitOptions


def _object(response: httpx.Response, key: str | None = None) -> dict[str, Any]:
    body = _json(response)
    if key is None:
        return body
    inner: dict[str, Any] = body[key]
    return inner


def _json(response: httpx.Response) -> dict[str, Any]:
    """The answer's JSON object; a DC1Error for anything else (a wrong base_url, a proxy's page)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        where = origin(response.request.url)
        message = f"{where} did not answer as DCP's API does (HTTP {response.status_code}): check base_url"
        raise DC1Error(message, status=response.status_code, body={"error": response.text[:500]})
    return body


def raw(call: Call) -> Operation[httpx.Response]:
    response: httpx.Response = yield call
    return response


def profile(role: str) -> Operation[dict[str, Any]]:
    return _object((yield Call("GET", f"/api/{role}s/me")))


def balance() -> Operation[Balance]:
    return Balance.from_api(_object((yield Call("GET", "/api/renters/balance"))))


def providers(
    *, live_only: bool, min_vram_gb: int | None, gpu_model: str | None
) -> Operation[list[Provider]]:
    """Every page: the cursor goes on after the last provider seen, whoever came or left meanwhile."""
    params: dict[str, Any] = {"live_only": live_only, "limit": 200}
    params.update({k: v for k, v in {"min_vram_gb": min_vram_gb, "gpu_model": gpu_model}.items() if v})
    found: list[Provider] = []
    while True:
        body = _object((yield Call("GET", "/api/renters/available-providers", params=params)))
        found += [Provider.from_api(item) for item in body["providers"]]
        cursor = body.get("next_after")
        if cursor is None or cursor == params.get("after"):  # the last page (or a server repeating one)
            return found
        params["after"] = cursor


def submit(
    job_type: str, params: Mapping[str, Any], *, duration_minutes: int, options: SubmitOptions
) -> Operation[Job]:
    """A retry carries the same idempotency key, so it never creates a second job."""
    chosen = {k: v for k, v in options.items() if v is not None and k != "idempotency_key"}
    body = {"job_type": job_type, "params": dict(params), "duration_minutes": duration_minutes, **chosen}
    key = options.get("idempotency_key") or new_idempotency_key()
    call = Call("POST", "/api/jobs/submit", json=body, headers={"idempotency-key": key})
    return Job.from_api(_object((yield call), "job"))


def job(job_id: str, *, deadline: float | None = None) -> Operation[Job]:
    return Job.from_api(_object((yield Call("GET", f"/api/jobs/{job_id}", deadline=deadline)), "job"))


def output(job_id: str, *, deadline: float | None = None) -> Operation[Output]:
    """The result (``ready`` False while it runs); the API's 410 for a failed job raises JobFailedError."""
    call = Call("GET", f"/api/jobs/{job_id}/output", allow=(202,), deadline=deadline)
    response: httpx.Response = yield call
    if response.status_code == 202:
        return Output.pending(_json(response))
    return Output.from_api(_json(response))


def cancel(job_id: str) -> Operation[Job]:
    return Job.from_api(_object((yield Call("POST", f"/api/jobs/{job_id}/cancel")), "job"))


def history_page(
    *, status: str | None, job_type: str | None, limit: int, before: str | None
) -> Operation[Page]:
    """Jobs older than ``before`` (the previous page's ``next_before``): a cursor, so jobs submitted or
    changing status between pages are neither skipped nor repeated."""
    chosen = {"status": status, "job_type": job_type, "before": before}
    call = Call("GET", "/api/jobs/history", params={k: v for k, v in chosen.items() if v} | {"limit": limit})
    body = _object((yield call))
    return Page([Job.from_api(item) for item in body["jobs"]], body.get("next_before"))


def wait_by_polling(job_id: str, *, deadline: float, interval: float | None) -> Operation[Output]:
    """Poll until the job ends (5 s, or 15 s for long jobs, as the seed advises), then read its output.

    429s are retried as the server advises (``retry_after_seconds``) by the client's retry rule, never past
    the deadline; a server that is away for a while (a restart) is asked again until then.
    """
    current = yield from _through_outages(job_id, deadline, interval or 1.0)
    every = interval if interval is not None else poll_interval(current.job_type)
    while not current.done:
        yield from _pause(job_id, every, deadline)
        current = yield from _through_outages(job_id, deadline, every)
    return (yield from output(job_id, deadline=deadline))  # failed or cancelled: 410, JobFailedError


def _through_outages(job_id: str, deadline: float, every: float) -> Operation[Job]:
    while True:
        try:
            return (yield from job(job_id, deadline=deadline))
        except (APIConnectionError, ProviderUnavailableError):
            yield from _pause(job_id, every, deadline)


def endpoint_url(job_id: str, *, deadline: float, interval: float | None) -> Operation[str]:
    """Poll a vllm_serve job's output until its endpoint serves (15 s apart by default)."""
    served = yield from job(job_id, deadline=deadline)
    if served.job_type != "vllm_serve":
        raise ValueError(f"Job {job_id} is a {served.job_type} job; only vllm_serve jobs have an endpoint")
    every = interval if interval is not None else poll_interval(served.job_type)
    while True:
        current = yield from output(job_id, deadline=deadline)  # failed or cancelled: JobFailedError
        if current.status == "running" and current.endpoint_url:
            return current.endpoint_url
        if current.ready:  # ended: its endpoint serves no more, if it ever did
            raise ValueError(f"Job {job_id} has ended ({current.status}); it serves no endpoint")
        yield from _pause(job_id, every, deadline)


def _pause(job_id: str, seconds: float, deadline: float) -> Operation[None]:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError(f"Job {job_id} did not finish within the time allowed")
    yield Sleep(min(seconds, remaining))


def earnings() -> Operation[dict[str, Any]]:
    return _object((yield Call("GET", "/api/providers/earnings")))


def request_withdrawal(
    amount_halala: int, iban: str, idempotency_key: str | None
) -> Operation[dict[str, Any]]:
    """A retry carries the same idempotency key, so a lost answer never asks to be paid twice."""
    body = {"amount_halala": amount_halala, "iban": iban}
    headers = {"idempotency-key": idempotency_key or new_idempotency_key()}
    call = Call("POST", "/api/providers/withdrawals", json=body, headers=headers)
    return _object((yield call), "withdrawal")


def dashboard() -> Operation[dict[str, Any]]:
    return _object((yield Call("GET", "/api/admin/dashboard")))


def admin_withdrawals(status: str | None) -> Operation[dict[str, Any]]:
    params = {"status": status} if status else {}
    return _object((yield Call("GET", "/api/admin/withdrawals", params=params)))


def approve_withdrawal(withdrawal_id: int) -> Operation[dict[str, Any]]:
    return _object((yield Call("POST", f"/api/admin/withdrawals/{withdrawal_id}/approve")), "withdrawal")
