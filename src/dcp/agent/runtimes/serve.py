"""vllm_serve: an OpenAI-compatible server for the job's lifetime, reached through the DCP server.

For the provider's own model folders it is vLLM, started for the job and stopped at its end; for the small
GGUF model it is llama.cpp's own server (the model the llm_inference runtime has loaded). The daemon never
exposes either: renters call the endpoint URL the DCP server publishes for the job, and the server relays each
request over the daemon's link to the engine on 127.0.0.1. The daemon only tells the server that the engine
serves (``endpoint_url``, whose value the server does not use).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any

from dcp.agent.runtimes.base import Events, JobFailed, RunResult
from dcp.agent.runtimes.llm import MODEL_ID, LlamaServer
from dcp.agent.runtimes.vllm import Launch, VllmEngines, VllmProcess

if TYPE_CHECKING:
    from dcp.agent.capabilities import Capabilities

log = logging.getLogger("dcp.agent.serve")
_STOP_MARGIN_SECONDS = 2.0


class ServeRuntime:
    job_type = "vllm_serve"

    def __init__(
        self,
        server: LlamaServer,
        *,
        capabilities: Capabilities,
        public_base: str,
        vllm: VllmEngines | None = None,
        any_model: bool = False,
    ) -> None:
        self.server, self.capabilities, self.vllm = server, capabilities, vllm
        self.public_base, self.any_model = public_base.rstrip("/"), any_model
        self.endpoints: dict[str, str] = {}  # job id → the engine's local address

    def models(self) -> list[str]:
        return self.capabilities.llm_names()

    def endpoint_for(self, job_id: str) -> str | None:
        return self.endpoints.get(job_id)

    async def prepare(self) -> None:
        if self.capabilities.gguf_models:
            await self.server.get()

    async def run(self, spec: dict[str, Any], events: Events) -> RunResult:
        params = spec["params"]
        choice = self.capabilities.choose_llm(params.get("model"), any_model=self.any_model)
        if choice.engine != "vllm":
            events.log(f"starting an OpenAI-compatible server for {MODEL_ID}")
            await self.server.get()
            if self.server.address is None:
                raise JobFailed("The engine did not start")
            return await self._serve(spec, events, self.server.address, MODEL_ID, engine=None)
        if self.vllm is None or choice.weights is None:
            raise JobFailed(f"Model {choice.model!r} needs vLLM, which this provider has not set up")
        launch = Launch(
            choice.model,
            choice.weights.path,
            max_model_len=int(params.get("max_model_len", 4096)),
            dtype=str(params.get("dtype", "auto")),
        )
        events.log(f"starting vLLM for {choice.model}")
        async with self.vllm.use(
            launch, keep_warm=False, note=events.log, cancelled=lambda: events.cancelled
        ) as engine:
            return await self._serve(spec, events, engine.address, choice.model, engine=engine)

    async def _serve(
        self, spec: dict[str, Any], events: Events, address: str, model: str, *, engine: VllmProcess | None
    ) -> RunResult:
        """Serve until the renter cancels, the paid duration is up, or the engine dies."""
        job_id = spec["job_id"]
        url = f"{self.public_base}/api/jobs/{job_id}/endpoint/v1"
        self.endpoints[job_id] = address
        events.endpoint(url)
        began = time.monotonic()
        seconds = float(spec["max_duration_seconds"]) - _STOP_MARGIN_SECONDS
        try:
            exit_code = await _until_cancelled_or_exit(events, seconds, engine)
        finally:
            self.endpoints.pop(job_id, None)
        if exit_code is not None and engine is not None:
            raise JobFailed(f"vLLM exited with code {exit_code} while serving {model}: {engine.last_lines()}")
        if events.cancelled:
            raise JobFailed("stopped")
        served = int(time.monotonic() - began)
        return RunResult(result={"endpoint_url": url, "model": model, "served_seconds": served})

    async def close(self) -> None:
        return None


async def _until_cancelled_or_exit(events: Events, seconds: float, engine: VllmProcess | None) -> int | None:
    """Wait for a cancel or the end of ``seconds``; the engine's exit code if it died first."""
    waiting = asyncio.ensure_future(events.wait_cancelled(seconds))
    dying = asyncio.ensure_future(engine.exited()) if engine is not None else None
    try:
        done, _ = await asyncio.wait(
            [task for task in (waiting, dying) if task], return_when=asyncio.FIRST_COMPLETED
        )
        return dying.result() if dying in done and waiting not in done else None
    finally:
        for task in (waiting, dying):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task


class PoolEngine:
    """The /v1 serving pool on llama.cpp: the small model, kept loaded, announced in heartbeats."""

    POOL_ID = "pool"

    def __init__(self, server: LlamaServer, *, concurrency: int, context: int) -> None:
        self.server, self.concurrency, self.context = server, concurrency, context

    @property
    def address(self) -> str | None:
        return self.server.address

    async def start(self) -> None:
        await self.server.get()

    def status(self) -> dict[str, Any]:
        return {
            "models": [MODEL_ID],
            "ready": self.server.address is not None,
            "concurrency": self.concurrency,
            "context_length": self.context,
        }

    async def close(self) -> None:
        return None


class VllmPool:
    """The /v1 serving pool on vLLM: one of the provider's models, loaded for the daemon's lifetime."""

    POOL_ID = PoolEngine.POOL_ID

    def __init__(self, engines: VllmEngines, launch: Launch, *, concurrency: int) -> None:
        self.engines, self.launch, self.concurrency = engines, launch, concurrency
        self.engine: VllmProcess | None = None
        self._held = contextlib.AsyncExitStack()

    @property
    def address(self) -> str | None:
        ready = self.engine is not None and self.engine.exit_code is None
        return self.engine.address if ready and self.engine is not None else None

    async def start(self) -> None:
        self.engine = await self._held.enter_async_context(
            self.engines.use(self.launch, keep_warm=True, note=log.info)
        )

    def status(self) -> dict[str, Any]:
        return {
            "models": [self.launch.model],
            "ready": self.address is not None,
            "concurrency": self.concurrency,
            "context_length": self.launch.max_model_len,
        }

    async def close(self) -> None:
        self.engine = None
        await self._held.aclose()
