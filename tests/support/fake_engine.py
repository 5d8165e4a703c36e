"""A simulated serving-pool provider: it holds a real WebSocket link to the server and answers the
gateway's relayed requests like an OpenAI-compatible engine would, or fails in a chosen way."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import httpx
import websockets

from tests.support.factories import Account

_USAGE = {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14}


class FakeEngine:
    """``behaviour``: ok, error500, error429, hangup (drops its link), silent (never answers), cut (stops
    mid-stream, or half an answer), hold (a stream waits after its first chunk, a whole answer before it
    starts, until ``proceed`` is set),
    bad_request, bad_request_tgi (refuses as TGI does, ``{"error": "..."}``), no_done (a stream's usage comes,
    then it ends without ``[DONE]``),
    raw (answers ``raw_start``'s fields and ``raw_body``, whatever those are).
    ``usage``: what it reports (default 11 prompt and 3 completion tokens)."""

    def __init__(
        self,
        base: str,
        account: Account,
        *,
        model: str = "fake-model",
        behaviour: str = "ok",
        concurrency: int = 4,
        usage: Any = _USAGE,
    ) -> None:
        self.base, self.account, self.model, self.usage = base, account, model, usage
        self.proceed = asyncio.Event()
        self.behaviour, self.concurrency = behaviour, concurrency
        self.requests: list[dict[str, Any]] = []
        self.raw_start: dict[str, Any] = {}
        self.raw_body = ""
        self.tasks: asyncio.Queue[dict[str, Any]] = asyncio.Queue()  # jobs pushed over the link
        self.asked = asyncio.Event()  # a request came
        self._task: asyncio.Task[None] | None = None
        self._answers: set[asyncio.Task[None]] = set()
        self._connected = asyncio.Event()

    async def start(self) -> FakeEngine:
        async with httpx.AsyncClient(base_url=self.base) as http:
            answer = await http.post(
                "/api/providers/heartbeat",
                headers=self.account.provider_headers,
                json={"serving": {"models": [self.model], "ready": True, "concurrency": self.concurrency}},
            )
            assert answer.status_code == 200, answer.text
        self._task = asyncio.create_task(self._run())
        await asyncio.wait_for(self._connected.wait(), timeout=5)
        return self

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        url = self.base.replace("http://", "ws://") + "/api/providers/link"
        async with websockets.connect(url, additional_headers={"x-provider-key": self.account.key}) as ws:
            self._connected.set()
            async for raw in ws:
                message = json.loads(raw)
                if message.get("type") == "http":
                    answer = asyncio.create_task(self._answer(ws, message))
                    self._answers.add(answer)
                    answer.add_done_callback(self._answers.discard)
                elif message.get("type") == "job":
                    self.tasks.put_nowait(message["task"])

    async def _answer(self, ws: Any, message: dict[str, Any]) -> None:
        self.requests.append(message)
        self.asked.set()
        rid, body = message["id"], json.loads(message["body"] or "{}")
        if self.behaviour == "silent":
            return
        if self.behaviour == "hangup":
            await ws.close()
            return
        if self.behaviour == "raw":
            await ws.send(json.dumps({"type": "http_start", "id": rid, **self.raw_start}))
            await ws.send(json.dumps({"type": "http_chunk", "id": rid, "data": self.raw_body}))
            await ws.send(json.dumps({"type": "http_end", "id": rid}))
            return
        if self.behaviour in ("error500", "error429"):
            status = 500 if self.behaviour == "error500" else 429
            await ws.send(
                json.dumps(
                    {"type": "http_start", "id": rid, "status": status, "content_type": "application/json"}
                )
            )
            await ws.send(
                json.dumps({"type": "http_chunk", "id": rid, "data": '{"error": {"message": "boom"}}'})
            )
            await ws.send(json.dumps({"type": "http_end", "id": rid}))
            return
        if self.behaviour in ("bad_request", "bad_request_tgi"):
            await ws.send(
                json.dumps(
                    {"type": "http_start", "id": rid, "status": 400, "content_type": "application/json"}
                )
            )
            refusal = {"message": "bad stop"} if self.behaviour == "bad_request" else "context too long"
            chunk = {"type": "http_chunk", "id": rid, "data": json.dumps({"error": refusal})}
            await ws.send(json.dumps(chunk))
            await ws.send(json.dumps({"type": "http_end", "id": rid}))
            return
        chat = message["path"].endswith("chat/completions")
        usage = self.usage
        if not body.get("stream"):
            if self.behaviour == "hold":  # a whole answer comes only once all of it is generated
                await self.proceed.wait()
            choice = (
                {"index": 0, "message": {"role": "assistant", "content": "Riyadh"}, "finish_reason": "stop"}
                if chat
                else {"index": 0, "text": "Riyadh", "finish_reason": "stop"}
            )
            answer = {
                "id": "cmpl-1",
                "object": "chat.completion" if chat else "text_completion",
                "model": self.model,
                "choices": [choice],
                "usage": usage,
            }
            await ws.send(
                json.dumps(
                    {"type": "http_start", "id": rid, "status": 200, "content_type": "application/json"}
                )
            )
            whole = json.dumps(answer)
            cut = whole[: len(whole) // 2] if self.behaviour == "cut" else whole
            await ws.send(json.dumps({"type": "http_chunk", "id": rid, "data": cut}))
            await ws.send(json.dumps({"type": "http_end", "id": rid}))
            return
        await ws.send(
            json.dumps({"type": "http_start", "id": rid, "status": 200, "content_type": "text/event-stream"})
        )
        for index, word in enumerate(["Ri", "ya", "dh"]):
            delta = {"delta": {"content": word}} if chat else {"text": word}
            chunk = {
                "id": "cmpl-1",
                "object": "chat.completion.chunk" if chat else "text_completion",
                "model": self.model,
                "choices": [{"index": 0, **delta, "finish_reason": None}],
            }
            await ws.send(
                json.dumps({"type": "http_chunk", "id": rid, "data": f"data: {json.dumps(chunk)}\n\n"})
            )
            if self.behaviour == "cut" and index == 1:
                await ws.send(json.dumps({"type": "http_end", "id": rid}))
                return
            if self.behaviour == "hold" and index == 0:
                await self.proceed.wait()
        final = {
            "id": "cmpl-1",
            "object": "chat.completion.chunk",
            "model": self.model,
            "choices": [],
            "usage": usage,
        }
        done = "" if self.behaviour == "no_done" else "data: [DONE]\n\n"
        await ws.send(
            json.dumps({"type": "http_chunk", "id": rid, "data": f"data: {json.dumps(final)}\n\n{done}"})
        )
        await ws.send(json.dumps({"type": "http_end", "id": rid}))
