"""The synchronous client, ``dc1.Client(api_key=…, base_url=…)``: the I/O loop over the shared operations."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Mapping
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


class Client(_base.BaseClient):
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
        super().__init__(
            api_key, base_url=base_url, admin_token=admin_token, max_retries=max_retries, timeout=timeout
        )
        self._http = httpx.Client(transport=transport, **self._http_options())
        self.jobs = Jobs(self)
        self.providers = Providers(self)
        self.withdrawals = Withdrawals(self)
        self.admin = Admin(self)

    def _run(self, operation: Operation[T]) -> T:
        steps = self._steps(operation)
        reply: Any = None
        while True:
            try:
                step = steps.send(reply)
            except StopIteration as stop:
                result: T = stop.value
                return result
            reply = self._perform(step)

    def _perform(self, step: Call | Sleep) -> Any:
        if isinstance(step, Sleep):
            time.sleep(step.seconds)
            return None
        try:
            return self._http.request(
                step.method, step.path, params=step.params, json=step.json, headers=step.headers
            )
        except httpx.TransportError as exc:
            return _core.connection_error(exc)

    def request(
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
        return self._run(ops.raw(call))

    def me(self) -> dict[str, Any]:
        """The renter's (or, with a provider key, the provider's) profile."""
        return self._run(ops.profile(self.role))

    def balance(self) -> Balance:
        return self._run(ops.balance())

    def earnings(self) -> dict[str, Any]:
        return self._run(ops.earnings())

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
        return self._client._run(
            ops.providers(live_only=live_only, min_vram_gb=min_vram_gb, gpu_model=gpu_model)
        )


class Jobs:
    def __init__(self, client: Client) -> None:
        self._client = client

    @overload
    def submit(
        self,
        job_type: LlmJobType,
        params: LlmParams,
        *,
        duration_minutes: int,
        **options: Unpack[SubmitOptions],
    ) -> Job: ...
    @overload
    def submit(
        self,
        job_type: ImageJobType,
        params: ImageParams,
        *,
        duration_minutes: int,
        **options: Unpack[SubmitOptions],
    ) -> Job: ...
    @overload
    def submit(
        self,
        job_type: VllmServeJobType,
        params: VllmServeParams,
        *,
        duration_minutes: int,
        **options: Unpack[SubmitOptions],
    ) -> Job: ...
    @overload
    def submit(
        self,
        job_type: ContainerJobType,
        params: ContainerParams,
        *,
        duration_minutes: int,
        **options: Unpack[SubmitOptions],
    ) -> Job: ...
    def submit(
        self,
        job_type: JobType,
        params: Mapping[str, Any],
        *,
        duration_minutes: int,
        **options: Unpack[SubmitOptions],
    ) -> Job:
        """Submit a job. A retry carries the same idempotency key, so it never creates a second job."""
        operation = ops.submit(job_type, params, duration_minutes=duration_minutes, options=options)
        return self._client._run(operation)

    def get(self, job_id: str) -> Job:
        return self._client._run(ops.job(job_id))

    def output(self, job_id: str) -> Output:
        """The result (``ready`` False while it runs); raises JobFailedError for a failed or cancelled job."""
        return self._client._run(ops.output(job_id))

    def cancel(self, job_id: str) -> Job:
        return self._client._run(ops.cancel(job_id))

    def history(
        self, *, status: str | None = None, job_type: str | None = None, page_size: int = 50
    ) -> Iterator[Job]:
        """Every job, newest first, fetching pages as it goes."""
        before: str | None = None
        while True:
            page = self._client._run(
                ops.history_page(status=status, job_type=job_type, limit=page_size, before=before)
            )
            yield from page.jobs
            if page.next_before is None:
                return
            before = page.next_before

    def stream(self, job_id: str, *, timeout: float | None = None) -> Iterator[Event]:
        """The job's live events (status, progress, tokens, logs) until ``done``; then it ends."""
        return self._follow(_streaming.plan(job_id, timeout))

    def wait(
        self,
        job_id: str,
        *,
        timeout: float = 600.0,
        interval: float | None = None,
        stream: bool = True,
        on_event: Callable[[Event], object] | None = None,
    ) -> Output:
        """The job's output once it ends: follows its event stream, polling if the stream is unavailable."""
        plan, polling = _base.wait_plan(job_id, timeout, interval)
        if stream:
            with contextlib.suppress(*_base.STREAM_FALLBACK):
                for event in self._follow(plan):
                    if on_event is not None:
                        on_event(event)
        return self._client._run(polling)

    def endpoint(self, job_id: str, *, timeout: float = 600.0, interval: float | None = None) -> str:
        """A vllm_serve job's OpenAI-compatible base URL, once its server is up."""
        return self._client._run(_base.endpoint_wait(job_id, timeout, interval))

    def openai_client(self, job_id: str, *, timeout: float = 600.0, **options: Any) -> openai.OpenAI:
        """An ``openai.OpenAI`` for a vllm_serve job's endpoint (needs the ``openai`` extra)."""
        url = self.endpoint(job_id, timeout=timeout)
        return _openai.sync_client(url, self._client.api_key, **options)

    def _follow(self, plan: _streaming.StreamPlan) -> Iterator[Event]:
        """The events until ``done``, the stream opened again when it ends early or breaks (``Following``)."""
        http, following = self._client._http, _streaming.Following(plan)
        while True:
            cause: DC1Error | None = None
            try:
                with http.stream("GET", plan.path, **following.request()) as response:
                    if not response.is_success:
                        response.read()
                        cause = _streaming.reopenable(_core.error_for(response))
                    else:
                        following.opened()
                        for line in response.iter_lines():
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
                time.sleep(following.pause(cause))


class Withdrawals:
    """A provider's payouts."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def request(self, amount_halala: int, iban: str, *, idempotency_key: str | None = None) -> dict[str, Any]:
        """Ask for a payout of earned halala to a Saudi IBAN; an admin approves it. A retry carries the same
        idempotency key (``idempotency_key=`` to choose it), so it never asks to be paid twice."""
        return self._client._run(ops.request_withdrawal(amount_halala, iban, idempotency_key))


class Admin:
    def __init__(self, client: Client) -> None:
        self._client = client
        self.withdrawals = AdminWithdrawals(client)

    def dashboard(self) -> dict[str, Any]:
        return self._client._run(ops.dashboard())


class AdminWithdrawals:
    """Every provider's payouts, for an admin."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def list(self, status: str | None = None) -> dict[str, Any]:
        """The withdrawals (``status`` filters), with a summary of what is pending."""
        return self._client._run(ops.admin_withdrawals(status))

    def approve(self, withdrawal_id: int) -> dict[str, Any]:
        return self._client._run(ops.approve_withdrawal(withdrawal_id))
