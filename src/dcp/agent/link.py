"""The daemon's connection to the server: HTTP calls with retries, and the WebSocket link (with long-poll)."""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import websockets

from dcp.agent import DAEMON_VERSION
from dcp.kit.http11 import Http11Client, Http11Error

log = logging.getLogger("dcp.agent.link")
PROTOCOL = "dcp-link/1"
MAX_BACKOFF_SECONDS = 30.0
FALLBACK_AFTER_FAILURES = 3


def backoff(failures: int) -> float:
    """Exponential with full jitter, so a thousand daemons do not reconnect in step after an outage."""
    return random.uniform(0, min(MAX_BACKOFF_SECONDS, 0.5 * 2**failures))  # noqa: S311


UNDELIVERED = "undelivered"  # report's answer when the server never took the result


class LeaseLost(Exception):
    """The server no longer lets this daemon report on the job (cancelled, timed out, reassigned)."""


class UnreadableAnswer(httpx.HTTPError):
    """The server (or a proxy in front of it: a maintenance page) answered without the API's JSON object."""


def _object(answer: httpx.Response) -> dict[str, Any]:
    try:
        body = answer.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        kind = answer.headers.get("content-type", "no content type")
        path = answer.request.url.path
        raise UnreadableAnswer(f"{path} answered {answer.status_code} with {kind}, not a JSON object")
    return body


class ServerClient:
    def __init__(self, server: str, key: str, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.server = server.rstrip("/")
        self.key = key
        self.http = httpx.AsyncClient(
            base_url=self.server,
            headers={"x-provider-key": key, "user-agent": f"dcp-daemon/{DAEMON_VERSION}"},
            timeout=httpx.Timeout(30.0, connect=10.0),
            transport=transport,
        )

    async def heartbeat(self, body: dict[str, Any]) -> dict[str, Any]:
        answer = await self.http.post("/api/providers/heartbeat", json=body)
        answer.raise_for_status()
        return _object(answer)

    async def next_job(self, wait: int) -> dict[str, Any] | None:
        answer = await self.http.get("/api/providers/jobs/next", params={"wait": wait}, timeout=wait + 30)
        if answer.status_code == 204:
            return None
        answer.raise_for_status()
        return _object(answer)

    async def job_call(self, job_id: str, action: str, body: dict[str, Any]) -> dict[str, Any]:
        """start / events: one try; LeaseLost when the server refuses the lease."""
        answer = await self.http.post(f"/api/providers/jobs/{job_id}/{action}", json=body)
        if answer.status_code in (404, 409):
            raise LeaseLost(str(_object(answer).get("error", "lease lost")))
        answer.raise_for_status()
        return _object(answer)

    async def report(self, job_id: str, body: dict[str, Any], *, attempts: int = 1000) -> str:
        """Deliver the result, retrying through outages until the server answers; returns the final status.
        A result too large for the server is reported as the job's failure instead: sent again, it would be
        refused again while the job's slot, and then another provider's, stayed taken."""
        for failures in range(attempts):
            try:
                answer = await self.http.post(f"/api/providers/jobs/{job_id}/result", json=body)
                if answer.status_code == 200:
                    return str(_object(answer).get("status", "delivered"))
            except (httpx.TransportError, UnreadableAnswer) as exc:
                log.warning("result for %s not delivered (%s); retrying", job_id, exc or type(exc).__name__)
            else:
                if answer.status_code == 413 and body.get("status") == "completed":
                    body = _too_large(body)
                    continue
                if answer.status_code in (400, 422) and "cause" in body:  # a server older than the field
                    body = {name: value for name, value in body.items() if name != "cause"}
                    continue
                if 400 <= answer.status_code < 500 and answer.status_code not in (408, 429):
                    return f"refused ({answer.status_code}): {answer.text[:300]}"
                log.warning("result for %s got %s; retrying", job_id, answer.status_code)
            await asyncio.sleep(backoff(min(failures, 6)))
        return UNDELIVERED

    async def close(self) -> None:
        await self.http.aclose()


def _too_large(report: dict[str, Any]) -> dict[str, Any]:
    return {
        "lease_token": report.get("lease_token", ""),
        "status": "failed",
        "error": "The job's result was larger than the server accepts (1 MiB): print or return less",
        "execution_time_ms": report.get("execution_time_ms"),
    }


class Link:
    """Keeps the WebSocket open (reconnecting with jittered backoff); after repeated failures it also
    long-polls for jobs so work keeps flowing through proxies that block WebSockets."""

    def __init__(
        self,
        client: ServerClient,
        *,
        on_task: Callable[[dict[str, Any]], Awaitable[None]],
        on_stop: Callable[[str], None],
        has_free_slot: Callable[[], bool],
        endpoint_for: Callable[[str], str | None] | None = None,
    ) -> None:
        self.client, self.on_task, self.on_stop, self.has_free_slot = client, on_task, on_stop, has_free_slot
        self.endpoint_for = endpoint_for or (lambda _job_id: None)
        self.mode = "connecting"
        self.ready = asyncio.Event()
        self._ws: Any = None
        self._send_lock = asyncio.Lock()
        self._relays: set[asyncio.Task[None]] = set()
        # One client for the local engines, its connections kept for the next request. No cap on connections:
        # the server already limits what it sends to this provider's declared concurrency.
        self._engines = Http11Client()

    @property
    def ws_url(self) -> str:
        return (
            self.client.server.replace("https://", "wss://").replace("http://", "ws://")
            + "/api/providers/link"
        )

    async def run(self) -> None:
        """Until cancelled (the daemon stops)."""
        failures = 0
        try:
            while True:
                try:
                    await self._websocket()
                    failures = 0
                except (OSError, websockets.WebSocketException, TimeoutError) as exc:
                    failures += 1
                    log.warning("link down (%s: %s); retry %d", type(exc).__name__, exc, failures)
                except Exception:  # never a link that stops for good: it reconnects
                    failures += 1
                    log.exception("link failed; retry %d", failures)
                if failures >= FALLBACK_AFTER_FAILURES:
                    self.mode = "long-poll"
                    await self._long_poll_once()
                await asyncio.sleep(backoff(failures))
        finally:
            self._engines.close()

    async def _websocket(self) -> None:
        headers = {"x-provider-key": self.client.key, "x-dcp-protocol": PROTOCOL}
        async with websockets.connect(
            self.ws_url,
            additional_headers=headers,
            open_timeout=10,
            ping_interval=20,
            max_size=8 * 1024 * 1024,
            compression=None,  # small JSON frames: deflating each costs relayed requests more than it saves
        ) as ws:
            self.mode = "websocket"
            self._ws = ws
            sender = asyncio.create_task(self._announce_ready(ws))
            try:
                async for raw in ws:
                    try:
                        message = json.loads(raw)
                    except ValueError:
                        message = None
                    if isinstance(message, dict):
                        await self._handle(message)
                    else:
                        log.warning("ignored a link frame that is not a JSON object: %.80r", raw)
            finally:
                sender.cancel()
                self.mode = "connecting"

    async def _announce_ready(self, ws: Any) -> None:
        while True:
            await self.ready.wait()
            self.ready.clear()
            await self._send({"type": "ready"})

    async def _handle(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "job" and isinstance(message.get("task"), dict):
            await self.on_task(message["task"])
        elif kind == "stop":
            self.on_stop(str(message.get("job_id")))
        elif kind == "http":
            relay = asyncio.create_task(self._relay(message))
            self._relays.add(relay)
            relay.add_done_callback(self._relays.discard)
        elif kind == "error":
            log.warning("server says: %s", message.get("error"))

    async def _send(self, message: dict[str, Any]) -> None:
        async with self._send_lock:
            await self._ws.send(json.dumps(message))

    async def _relay(self, message: dict[str, Any]) -> None:
        """Forward one endpoint request to a serving job's local engine and stream its answer back."""
        request_id, job_id = str(message.get("id")), str(message.get("job_id"))
        address = self.endpoint_for(job_id)
        if address is None:
            await self._send({"type": "http_error", "id": request_id, "error": "the job is not serving here"})
            return
        url = f"{address}/{str(message.get('path', '')).lstrip('/')}"
        try:
            async with self._engines.request(
                str(message.get("method", "POST")),
                url,
                body=str(message.get("body", "")).encode(),
                content_type=str(message.get("content_type", "application/json")),
            ) as answer:
                start = {"status": answer.status, "content_type": answer.content_type}
                await self._send({"type": "http_start", "id": request_id, **start})
                async for text in answer.text:
                    await self._send({"type": "http_chunk", "id": request_id, "data": text})
            await self._send({"type": "http_end", "id": request_id})
        except Http11Error as exc:
            await self._send({"type": "http_error", "id": request_id, "error": f"engine error: {exc}"})

    async def _long_poll_once(self) -> None:
        if not self.has_free_slot():
            return
        try:
            task = await self.client.next_job(wait=25)
        except httpx.HTTPError as exc:
            log.warning("long-poll failed: %s", type(exc).__name__)
            return
        if task is not None:
            await self.on_task(task)
