"""The asynchronous client, ``dc1.AsyncClient(api_key=…, base_url=…)``: the same operations, awaited."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from typing import TYPE_CHECKING, Any, overload

import httpx

from dc1 import _base, _core, _openai, _streaming
from dc1 import _operations as ops
from dc1._core import Call, Operation, Sleep, T
from dc1._exceptions import DC1Error
from dc1._models import Balance, Event, Job, Output, Provider
from dc1._params import (
    ContainerJobType,
    ContainerParams,
    ImageJobType,
    ImageParams,
    JobType,
    LlmJobType,
    LlmParams,
    SubmitOptions,
    VllmServeJobType,
    VllmServeParams,
)

if TYPE_CHECKING:
    import openai
    from typing_extensions import Unpack


class AsyncClient(_base.BaseClient):
    """Renter, provider or admin access to DCP; retries only what the API says is retryable."""

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str = _core.DEFAULT_BASE_URL,
        admin_token: str | None = None,
        max_retries: int = 2,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(
            api_key, base_url=base_url, admin_token=admin_token, max_retries=max_retries, timeout=timeout
        )
        self._http = httpx.AsyncClient(transport=transport, **self._http_options())
        self.jobs = AsyncJobs(self)
        self.providers = AsyncProviders(self)
        self.withdrawals = AsyncWithdrawals(self)
        self.admin = AsyncAdmin(self)

    async def _run(self, operation: Operation[T]) -> T:
        steps = self._steps(operation)
        reply: Any = None
        while True:
            try:
                step = steps.send(reply)
            except StopIteration as stop:
                result: T = stop.value
                return result
            reply = await self._perform(step)

    async def _perform(self, step: Call | Sleep) -> Any:
        if isinstance(step, Sleep):
            await asyncio.sleep(step.seconds)
            return None
        try:
            return await self._http.request(
                step.method, step.path, params=step.params, json=step.json, headers=step.headers
            )
        except httpx.TransportError as exc:
            return _core.connection_error(exc)

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
        allow: tuple[int, ...] = (),
    ) -> httpx.Response:
        """Any API request, with the SDK's error mapping and retries (for endpoints without a method)."""
        call = Call(method, path, params=params, json=json, headers=headers, allow=allow)
        return await self._run(ops.raw(call))

    async def me(self) -> dict[str, Any]:
        """The renter's (or, with a provider key, the provider's) profile."""
        return await self._run(ops.profile(self.role))

    async def balance(self) -> Balance:
        return await self._run(ops.balance())

    async def earnings(self) -> dict[str, Any]:
        return await self._run(ops.earnings())

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()


class AsyncProviders:
    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def list(
        self, *, live_only: bool = True, min_vram_gb: int | None = None, gpu_model: str | None = None
    ) -> list[Provider]:
        return await self._client._run(
            ops.providers(live_only=live_only, min_vram_gb=min_vram_gb, gpu_model=gpu_model)
        )


class AsyncJobs:
    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    @overload
    async def submit(
        self,
        job_type: LlmJobType,
        params: LlmParams,
        *,
        duration_minutes: int,
        **options: Unpack[SubmitOptions],
    ) -> Job: ...
    @overload
    async def submit(
        self,
        job_type: ImageJobType,
        params: ImageParams,
        *,
        duration_minutes: int,
        **options: Unpack[SubmitOptions],
    ) -> Job: ...
    @overload
    async def submit(
        self,
        job_type: VllmServeJobType,
        params: VllmServeParams,
        *,
        duration_minutes: int,
        **options: Unpack[SubmitOptions],
    ) -> Job: ...
    @overload
    async def submit(
        self,
        job_type: ContainerJobType,
        params: ContainerParams,
        *,
        duration_minutes: int,
        **options: Unpack[SubmitOptions],
    ) -> Job: ...
    async def submit(
        self,
        job_type: JobType,
        params: Mapping[str, Any],
        *,
        duration_minutes: int,
        **options: Unpack[SubmitOptions],
    ) -> Job:
        """Submit a job. A retry carries the same idempotency key, so it never creates a second job."""
        operation = ops.submit(job_type, params, duration_minutes=duration_minutes, options=options)
        return await self._client._run(operation)

    async def get(self, job_id: str) -> Job:
        return await self._client._run(ops.job(job_id))

    async def output(self, job_id: str) -> Output:
        """The result (``ready`` False while it runs); raises JobFailedError for a failed or cancelled job."""
        return await self._client._run(ops.output(job_id))

    async def cancel(self, job_id: str) -> Job:
        return await self._client._run(ops.cancel(job_id))

    async def history(
        self, *, status: str | None = None, job_type: str | None = None, page_size: int = 50
    ) -> AsyncIterator[Job]:
        """Every job, newest first, fetching pages as it goes."""
        before: str | None = None
        while True:
            page = await self._client._run(
                ops.history_page(status=status, job_type=job_type, limit=page_size, before=before)
            )
            for job in page.jobs:
                yield job
            if page.next_before is None:
                return
            before = page.next_before

    def stream(self, job_id: str, *, timeout: float | None = None) -> AsyncIterator[Event]:
        """The job's live events (status, progress, tokens, logs) until ``done``; then it ends."""
        return self._follow(_streaming.plan(job_id, timeout))

    async def wait(
        self,
        job_id: str,
        *,
        timeout: float = 600.0,  # noqa: ASYNC109 - the same surface as Client; it bounds the polling too
        interval: float | None = None,
        stream: bool = True,
        on_event: Callable[[Event], object] | None = None,
    ) -> Output:
        """The job's output once it ends: follows its event stream, polling if the stream is unavailable."""
        plan, polling = _base.wait_plan(job_id, timeout, interval)
        if stream:
            with contextlib.suppress(*_base.STREAM_FALLBACK):
                async for event in self._follow(plan):
                    if on_event is not None:
                        on_event(event)
        return await self._client._run(polling)

    async def endpoint(
        self,
        job_id: str,
        *,
        timeout: float = 600.0,  # noqa: ASYNC109 - the same surface as Client
        interval: float | None = None,
    ) -> str:
        """A vllm_serve job's OpenAI-compatible base URL, once its server is up."""
        return await self._client._run(_base.endpoint_wait(job_id, timeout, interval))

    async def openai_client(
        self,
        job_id: str,
        *,
        timeout: float = 600.0,  # noqa: ASYNC109 - the same surface as Client
        **options: Any,
    ) -> openai.AsyncOpenAI:
        """An ``openai.AsyncOpenAI`` for a vllm_serve job's endpoint (needs the ``openai`` extra)."""
        url = await self.endpoint(job_id, timeout=timeout)
        return _openai.async_client(url, self._client.api_key, **options)

    async def _follow(self, plan: _streaming.StreamPlan) -> AsyncIterator[Event]:
        """The events until ``done``, the stream opened again when it ends early or breaks (``Following``)."""
        http, following = self._client._http, _streaming.Following(plan)
        while True:
            cause: DC1Error | None = None
            try:
                async with http.stream("GET", plan.path, **following.request()) as response:
                    if not response.is_success:
                        await response.aread()
                        cause = _streaming.reopenable(_core.error_for(response))
                    else:
                        following.opened()
                        async for line in response.aiter_lines():
                            event = following.read(line)
                            if event is not None:
                                yield event
                                if event.done:
                                    return
                            if following.renew_due():
                                break
                        else:
                            cause = plan.ended_early()
            except httpx.TransportError as exc:
                cause = plan.failure(exc)
            if cause is not None:
                await asyncio.sleep(following.pause(cause))


class AsyncWithdrawals:
    """A provider's payouts."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def request(
        self, amount_halala: int, iban: str, *, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """Ask for a payout of earned halala to a Saudi IBAN; an admin approves it. A retry carries the same
        idempotency key (``idempotency_key=`` to choose it), so it never asks to be paid twice."""
        return await self._client._run(ops.request_withdrawal(amount_halala, iban, idempotency_key))


class AsyncAdmin:
    def __init__(self, client: AsyncClient) -> None:
        self._client = client
        self.withdrawals = AsyncAdminWithdrawals(client)

    async def dashboard(self) -> dict[str, Any]:
        return await self._client._run(ops.dashboard())


class AsyncAdminWithdrawals:
    """Every provider's payouts, for an admin."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def list(self, status: str | None = None) -> dict[str, Any]:
        """The withdrawals (``status`` filters), with a summary of what is pending."""
        return await self._client._run(ops.admin_withdrawals(status))

    async def approve(self, withdrawal_id: int) -> dict[str, Any]:
        return await self._client._run(ops.approve_withdrawal(withdrawal_id))
