"""Runs jobs: checks each spec's signature and expiry, runs it in its runtime within its time limit,
streams progress and tokens back, and reports the result until the server acknowledges it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any

import httpx

from dcp.agent.link import UNDELIVERED, LeaseLost, ServerClient, UnreadableAnswer
from dcp.agent.runtimes.base import JobFailed, RunResult, Runtime
from dcp.agent.state import JobStore
from dcp.kit.signing import verify

log = logging.getLogger("dcp.agent.runner")
FLUSH_SECONDS = 0.25
GRACE_SECONDS = 5


_MAX_PENDING_LINES = 4096  # log lines waiting to be sent, at most
_MAX_BATCH_BYTES = 256 * 1024  # of log lines in one post (the server takes bodies up to 1 MiB)


class JobEvents:
    """Collects a job's events and posts them in small batches; each post also renews the lease."""

    def __init__(self, client: ServerClient, job_id: str, lease_token: str) -> None:
        self.client, self.job_id, self.lease_token = client, job_id, lease_token
        self._tokens: list[str] = []
        self._logs: list[str] = []
        self._unsent_lines = 0  # past _MAX_PENDING_LINES: counted, not kept
        self._progress: int | None = None
        self._endpoint: str | None = None
        self._cancelled = asyncio.Event()
        self._wake = asyncio.Event()
        self._first_tokens = asyncio.Event()
        self._tokens_sent = False

    def progress(self, percent: int) -> None:
        self._progress = max(0, min(100, percent))
        self._wake.set()

    def tokens(self, text: str) -> None:
        self._tokens.append(text)
        self._wake.set()
        self._first_tokens.set()

    def log(self, line: str) -> None:
        if len(self._logs) < _MAX_PENDING_LINES:
            self._logs.append(line)
        else:  # a script printing faster than lines are sent: its whole output still comes with its result
            self._unsent_lines += 1
        self._wake.set()

    def endpoint(self, url: str) -> None:
        self._endpoint = url
        self._wake.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def cancel(self) -> None:
        self._cancelled.set()

    async def wait_cancelled(self, within: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._cancelled.wait(), timeout=max(within, 0))
        return self.cancelled

    async def pump(self, renew_every: float) -> None:
        """Post what accumulated every FLUSH_SECONDS, and at least every ``renew_every`` to keep the lease.
        The first tokens go at once: the renter's time to first token should not wait for a batch."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=renew_every)
            if self._tokens_sent:
                await asyncio.sleep(FLUSH_SECONDS)
            else:  # until the first tokens have gone, their arrival cuts any batch short
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._first_tokens.wait(), timeout=FLUSH_SECONDS)
            self._wake.clear()
            await self.flush()

    async def flush(self) -> None:
        body: dict[str, Any] = {"lease_token": self.lease_token}
        if self._tokens:
            body["tokens"], self._tokens = self._tokens[:512], self._tokens[512:]
            self._tokens_sent = True
        if self._unsent_lines and len(self._logs) < _MAX_PENDING_LINES:
            self._logs.append(f"[{self._unsent_lines} lines not shown live: printed faster than sent]")
            self._unsent_lines = 0
        sent_logs = self._next_lines()
        if sent_logs:
            body["logs"] = sent_logs
        if self._progress is not None:
            body["progress"] = self._progress
        if self._endpoint:
            body["endpoint_url"] = self._endpoint
        try:
            await self.client.job_call(self.job_id, "events", body)
        except LeaseLost:
            self.cancel()  # cancelled or reassigned: stop working on it
        except Exception as exc:
            log.warning("events for %s not delivered: %s", self.job_id, exc)
            if _transient(exc):  # the lines go again with the next batch; tokens do not (the live text
                # must not repeat, and the job's result carries the whole of it); a refusal is not repeated
                self._logs = [*sent_logs, *self._logs][:_MAX_PENDING_LINES]

    def _next_lines(self) -> list[str]:
        """The next batch of waiting lines: at most 256, and well under the server's body limit."""
        size, count = 0, 0
        for line in self._logs[:256]:
            size += len(json.dumps(line))  # as sent: non-ASCII characters escaped
            if size > _MAX_BATCH_BYTES and count:
                break
            count += 1
        batch, self._logs = self._logs[:count], self._logs[count:]
        return batch


def _transient(exc: Exception) -> bool:
    """A failure that may not happen again: the server or the network away, not a refusal of the batch."""
    if isinstance(exc, httpx.HTTPStatusError):
        return exc.response.status_code >= 500 or exc.response.status_code in (408, 429)
    return isinstance(exc, httpx.TransportError | UnreadableAnswer)


class Runner:
    def __init__(
        self,
        *,
        client: ServerClient,
        runtimes: dict[str, Runtime],
        store: JobStore,
        signing_key: str,
        slots: int,
    ) -> None:
        self.client, self.runtimes, self.store = client, runtimes, store
        self.signing_key, self.slots = signing_key, slots
        self.running: dict[str, JobEvents] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.finished = 0
        self.on_free_slot: list[Any] = []
        self.stopping = False  # the daemon is stopping: the jobs it cuts off go back to the queue

    def has_free_slot(self) -> bool:
        return len(self.running) < self.slots

    async def accept(self, task: dict[str, Any]) -> None:
        spec, signature = task.get("spec") or {}, str(task.get("signature", ""))
        problem = self.check(spec, signature)
        if problem:
            log.error("refusing a task spec: %s", problem)
            return
        job_id = spec["job_id"]
        if job_id in self.running:
            return
        self.store.save(job_id, {"spec": spec, "state": "running"})
        events = JobEvents(self.client, job_id, spec["lease_token"])
        self.running[job_id] = events
        job = asyncio.create_task(self._run(spec, events))
        self.tasks.add(job)
        job.add_done_callback(self.tasks.discard)

    def check(self, spec: dict[str, Any], signature: str) -> str | None:
        """Why this spec must not run, or None: a bad signature, an expired lease, an unknown protocol."""
        if not signature or not verify(spec, signature, self.signing_key):
            return "its signature does not verify with this provider's signing key"
        if spec.get("protocol") != "dcp-task/1":
            return f"unknown protocol {spec.get('protocol')!r}"
        try:
            expires = datetime.fromisoformat(str(spec["expires_at"]).replace("Z", "+00:00"))
        except (KeyError, ValueError):
            return "it has no valid expiry"
        if expires < datetime.now(UTC):
            return f"it expired at {spec['expires_at']}"
        return None

    def stop(self, job_id: str) -> None:
        if events := self.running.get(job_id):
            events.cancel()

    async def _run(self, spec: dict[str, Any], events: JobEvents) -> None:
        job_id, lease = spec["job_id"], spec["lease_token"]
        report: dict[str, Any]
        pump = asyncio.create_task(events.pump(renew_every=_renew_interval(spec)))
        began = time.monotonic()
        try:
            await self.client.job_call(job_id, "start", {"lease_token": lease})
            outcome = await self._execute(spec, events)
            report = {
                "lease_token": lease,
                "status": "completed",
                "result": outcome.result,
                "tokens_generated": outcome.tokens_generated,
            }
        except LeaseLost as exc:
            log.info("job %s is no longer ours: %s", job_id, exc)
            report = {}
        except JobFailed as exc:
            report = {"lease_token": lease, "status": "failed", "error": str(exc)[:2000]}
            if self.stopping:
                report.update(error="The provider's daemon stopped while the job ran", cause="interrupted")
            elif exc.own_fault:  # billed for the time it ran; otherwise refunded
                report["cause"] = "job"
        except Exception as exc:
            log.exception("job %s crashed", job_id)
            report = {
                "lease_token": lease,
                "status": "failed",
                "error": f"The daemon failed: {type(exc).__name__}",
            }
        finally:
            pump.cancel()
        await events.flush()
        delivered = True
        if report:
            report["execution_time_ms"] = int((time.monotonic() - began) * 1000)
            self.store.save(job_id, {"spec": spec, "state": "reporting", "report": report})
            status = await self.client.report(job_id, report)
            log.info("job %s reported: %s", job_id, status)
            delivered = status != UNDELIVERED
        if delivered:
            self.store.drop(job_id)
        self.running.pop(job_id, None)
        self.finished += 1
        for callback in self.on_free_slot:
            callback()

    async def _execute(self, spec: dict[str, Any], events: JobEvents) -> RunResult:
        runtime = self.runtimes.get(spec["job_type"])
        if runtime is None:
            raise JobFailed(f"This provider does not run {spec['job_type']} jobs")
        limit = int(spec["max_duration_seconds"])
        try:
            return await asyncio.wait_for(runtime.run(spec, events), timeout=limit + GRACE_SECONDS)
        except TimeoutError:
            events.cancel()
            message = f"The job exceeded its limit of {limit} s and was stopped"
            raise JobFailed(message, own_fault=True) from None

    def recovery(self) -> Coroutine[Any, Any, None]:
        """After a restart: deliver results that were pending, and report jobs cut off by the restart. What
        the restart left is read now, before any new job is taken; the returned work delivers it, alongside
        heartbeats and new jobs (a server that keeps refusing must not keep the provider offline)."""
        return self._recover(self.store.all())

    async def _recover(self, records: list[dict[str, Any]]) -> None:
        for record in records:
            spec = record.get("spec", {})
            job_id = spec.get("job_id")
            if not job_id or job_id in self.running:  # sent again over the new link and running: it reports
                continue
            report = record.get("report") or {
                "lease_token": spec.get("lease_token", ""),
                "status": "failed",
                "error": "The provider's daemon restarted while the job ran",
                "cause": "interrupted",  # back to the queue, to run again
            }
            log.info("recovering job %s (%s)", job_id, record.get("state"))
            if await self.client.report(job_id, report, attempts=20) == UNDELIVERED:
                log.warning("job %s: the server is still away; its result stays for the next start", job_id)
                continue
            self.store.drop(job_id)

    async def drain(self) -> None:
        self.stopping = True
        for events in self.running.values():
            events.cancel()
        if self.tasks:
            await asyncio.wait(self.tasks, timeout=30)


def _renew_interval(spec: dict[str, Any]) -> float:
    """A third of the lease the server granted, so two renewals can fail before it runs out."""
    expires = datetime.fromisoformat(str(spec["expires_at"]).replace("Z", "+00:00"))
    return max(1.0, (expires - datetime.now(UTC)).total_seconds() / 3)
