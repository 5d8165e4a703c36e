"""vLLM on the provider's GPU: its OpenAI-compatible server as a subprocess, started, watched and stopped."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import os
import signal
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from dcp.agent.runtimes.base import Events, JobFailed, RunResult
from dcp.kit.http11 import Http11Client, Http11Error

log = logging.getLogger("dcp.agent.vllm")
NOTE_EVERY_SECONDS = 10.0
POLL_SECONDS = 0.5


@dataclass(frozen=True)
class Launch:
    """What one vLLM server starts with; a job that needs another launch needs another server."""

    model: str  # the name it answers to (--served-model-name)
    path: Path
    max_model_len: int
    dtype: str = "auto"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _never() -> bool:
    return False


@dataclass
class _Started:
    process: asyncio.subprocess.Process
    ended: asyncio.Task[int]
    reader: asyncio.Task[None]


class VllmProcess:
    """One vLLM server on 127.0.0.1: started, polled on /v1/models until it lists the model, stopped with
    SIGTERM to its process group (vLLM's engine runs in child processes) and SIGKILL after a grace period."""

    def __init__(self, command: tuple[str, ...], launch: Launch, *, grace_seconds: float) -> None:
        self.command, self.launch, self.grace = command, launch, grace_seconds
        self.port = _free_port()
        self.users = 0
        self.tail: collections.deque[str] = collections.deque(maxlen=40)
        # Kept for the server's life: a new httpx client per job cost about 17 ms (its TLS context) before
        # the job's first token.
        self.http = Http11Client(read_seconds=300.0)
        self._started: _Started | None = None

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def argv(self) -> list[str]:
        launch = self.launch
        return [
            *self.command,
            *("--model", str(launch.path), "--served-model-name", launch.model),
            *("--host", "127.0.0.1", "--port", str(self.port)),
            *("--max-model-len", str(launch.max_model_len), "--dtype", launch.dtype),
            "--disable-uvicorn-access-log",  # renters' requests stay out of the provider's logs
        ]

    @property
    def exit_code(self) -> int | None:
        return self._started.process.returncode if self._started is not None else None

    def last_lines(self, count: int = 3) -> str:
        return " | ".join(list(self.tail)[-count:])[-600:] or "no output"

    async def wait_exit(self, seconds: float) -> int | None:
        """The exit code if the server exits within ``seconds``, else None."""
        if self._started is not None:
            await asyncio.wait({self._started.ended}, timeout=seconds)
        return self.exit_code

    async def exited(self) -> int:
        """Wait until the server exits (for any reason) and return its exit code."""
        if self._started is None:
            return 0
        return await asyncio.shield(self._started.ended)

    async def start(
        self, *, ready_within: float, note: Callable[[str], None], cancelled: Callable[[], bool] = _never
    ) -> None:
        log.info("starting vLLM: %s", " ".join(self.argv))
        try:
            process = await asyncio.create_subprocess_exec(
                *self.argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            raise JobFailed(f"vLLM could not be started ({self.command[0]}): {exc.strerror}") from exc
        self._started = _Started(
            process, asyncio.create_task(process.wait()), asyncio.create_task(self._read(process))
        )
        await self._wait_ready(self._started.ended, ready_within, note, cancelled)

    async def _wait_ready(
        self,
        ended: asyncio.Task[int],
        within: float,
        note: Callable[[str], None],
        cancelled: Callable[[], bool],
    ) -> None:
        model, began = self.launch.model, time.monotonic()
        next_note = began
        async with httpx.AsyncClient(timeout=httpx.Timeout(2.0)) as http:
            while not await self._lists_model(http):
                now = time.monotonic()
                if now >= next_note:
                    note(f"vLLM is loading {model} ({now - began:.0f} s): {self.last_lines(1)[:200]}")
                    next_note = now + NOTE_EVERY_SECONDS
                if cancelled():
                    raise JobFailed("stopped")
                if now - began > within:
                    raise JobFailed(f"vLLM did not load {model} within {within:.0f} s ({self.last_lines(1)})")
                done, _ = await asyncio.wait({ended}, timeout=POLL_SECONDS)
                if done:
                    raise JobFailed(
                        f"vLLM exited with code {ended.result()} while loading {model}: {self.last_lines()}"
                    )
        note(f"vLLM serves {model} ({time.monotonic() - began:.0f} s to load)")

    async def _lists_model(self, http: httpx.AsyncClient) -> bool:
        try:
            answer = await http.get(f"{self.address}/v1/models")
            return answer.status_code == 200 and any(
                entry.get("id") == self.launch.model for entry in answer.json().get("data", [])
            )
        except (httpx.HTTPError, ValueError, AttributeError):
            return False  # not listening yet, or still loading behind a bound socket

    async def _read(self, process: asyncio.subprocess.Process) -> None:
        """Keep the last lines of vLLM's output (for error messages); tqdm bars end lines with \\r."""
        if process.stdout is None:
            return
        pending = ""
        while chunk := await process.stdout.read(65536):
            pending += chunk.decode(errors="replace").replace("\r", "\n")
            *lines, pending = pending.split("\n")
            for line in filter(None, (line.strip() for line in lines)):
                self.tail.append(line)
                log.debug("vllm: %s", line)

    async def stop(self) -> None:
        self.http.close()
        started = self._started
        if started is None:
            return
        if started.process.returncode is None:
            _signal(started.process, signal.SIGTERM)
            done, _ = await asyncio.wait({started.ended}, timeout=self.grace)
            if not done:
                log.warning("vLLM ignored SIGTERM for %.0f s; killing it", self.grace)
        _signal(started.process, signal.SIGKILL)  # what is left of its group: stray workers hold GPU memory
        await started.ended
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(started.reader, timeout=5)
        log.info("vLLM for %s stopped (exit code %s)", self.launch.model, started.process.returncode)


def _signal(process: asyncio.subprocess.Process, number: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, number)


class VllmEngines:
    """The one vLLM server this GPU holds at a time, shared by the jobs (and the /v1 pool) that need the same
    launch. A vllm_serve job's server stops when the job ends; after an LLM job it stays loaded for
    ``idle_seconds`` so the next prompt does not wait for the model to load again."""

    def __init__(
        self, command: tuple[str, ...], *, ready_seconds: float, grace_seconds: float, idle_seconds: float
    ) -> None:
        self.command, self.ready_seconds = command, ready_seconds
        self.grace_seconds, self.idle_seconds = grace_seconds, idle_seconds
        self.current: VllmProcess | None = None
        self._lock = asyncio.Lock()
        self._idle: asyncio.Task[None] | None = None

    @contextlib.asynccontextmanager
    async def use(
        self,
        launch: Launch,
        *,
        keep_warm: bool,
        note: Callable[[str], None],
        cancelled: Callable[[], bool] = _never,
    ) -> AsyncIterator[VllmProcess]:
        server = await self._acquire(launch, note, cancelled)
        try:
            yield server
        finally:
            await asyncio.shield(self._release(server, keep_warm=keep_warm))

    async def _acquire(
        self, launch: Launch, note: Callable[[str], None], cancelled: Callable[[], bool]
    ) -> VllmProcess:
        async with self._lock:
            if self._idle is not None:
                self._idle.cancel()
                self._idle = None
            current = self.current
            if current is not None and (current.launch != launch or current.exit_code is not None):
                if current.users and current.exit_code is None:
                    raise JobFailed(f"This provider's GPU is busy serving {current.launch.model}; try later")
                await self._retire()
            if self.current is None:
                server = VllmProcess(self.command, launch, grace_seconds=self.grace_seconds)
                try:
                    await server.start(ready_within=self.ready_seconds, note=note, cancelled=cancelled)
                except BaseException:
                    await asyncio.shield(server.stop())
                    raise
                self.current = server
            self.current.users += 1
            return self.current

    async def _release(self, server: VllmProcess, *, keep_warm: bool) -> None:
        async with self._lock:
            server.users -= 1
            if server is not self.current or server.users:
                return
            if keep_warm and self.idle_seconds > 0 and server.exit_code is None:
                self._idle = asyncio.create_task(self._stop_when_idle(server))
            else:
                await self._retire()

    async def _stop_when_idle(self, server: VllmProcess) -> None:
        await asyncio.sleep(self.idle_seconds)
        async with self._lock:
            if self.current is server and not server.users:
                await self._retire()

    async def _retire(self) -> None:
        server, self.current = self.current, None
        if server is not None:
            await server.stop()

    async def close(self) -> None:
        async with self._lock:  # held first, so an idle stop is never cut off half way
            if self._idle is not None:
                self._idle.cancel()
            await self._retire()


async def stream_completion(
    server: VllmProcess, *, chat: bool, params: dict[str, Any], events: Events
) -> RunResult:
    """One llm_inference job as one streaming request: as chat where the model ships a chat template (it
    then gets its own prompt format), else as a plain completion; tokens go to the job as they come."""
    body = json.dumps(_request_body(server.launch.model, params, chat=chat)).encode()
    pieces: list[str] = []
    usage: dict[str, Any] = {}
    path = "/v1/chat/completions" if chat else "/v1/completions"
    try:
        async with server.http.request(
            "POST", server.address + path, body=body, content_type="application/json"
        ) as answer:
            if answer.status != 200:
                detail = "".join([text async for text in answer.text])[:500]
                raise JobFailed(f"vLLM refused the request ({answer.status}): {detail}")
            async for line in _lines(answer.text):
                chunk = _sse_data(line)
                if chunk is None:
                    continue
                if text := _chunk_text(chunk, chat=chat):
                    pieces.append(text)
                    events.tokens(text)
                usage.update(chunk.get("usage") or {})
                if events.cancelled:
                    break  # leaving the stream closes the connection, and vLLM aborts the request
    except Http11Error as exc:
        code = await server.wait_exit(2.0)  # a server that died mid-answer: say so, with its last words
        state = f"it exited with code {code}: {server.last_lines()}" if code is not None else ""
        raise JobFailed(f"vLLM stopped answering ({exc}) {state}".strip()) from exc
    if events.cancelled:
        raise JobFailed("stopped")
    return RunResult(
        result={"response": "".join(pieces).strip(), "model": server.launch.model, "usage": usage},
        tokens_generated=int(usage.get("completion_tokens", len(pieces))),
    )


def _request_body(model: str, params: dict[str, Any], *, chat: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": int(params.get("max_tokens", 256)),
        "temperature": float(params.get("temperature", 0.7)),
        "top_p": float(params.get("top_p", 1.0)),
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if params.get("stop"):
        body["stop"] = list(params["stop"])
    if params.get("seed") is not None:
        body["seed"] = int(params["seed"])
    if chat:
        body["messages"] = [{"role": "user", "content": str(params["prompt"])}]
    else:
        body["prompt"] = str(params["prompt"])
    return body


async def _lines(text: AsyncIterator[str]) -> AsyncIterator[str]:
    """The stream's lines as they complete (a piece of the body may hold several, or part of one)."""
    pending = ""
    async for piece in text:
        *lines, pending = (pending + piece).split("\n")
        for line in lines:
            yield line.rstrip("\r")
    if pending:
        yield pending


def _sse_data(line: str) -> dict[str, Any] | None:
    if not line.startswith("data:"):
        return None
    payload = line[5:].strip()
    if payload == "[DONE]":
        return None
    try:
        chunk = json.loads(payload)
    except ValueError:
        return None
    return chunk if isinstance(chunk, dict) else None


def _chunk_text(chunk: dict[str, Any], *, chat: bool) -> str:
    choices = chunk.get("choices") or []
    if chat:
        return "".join((choice.get("delta") or {}).get("content") or "" for choice in choices)
    return "".join(choice.get("text") or "" for choice in choices)
