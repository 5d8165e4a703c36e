"""vllm_serve: an OpenAI-compatible server for the job's lifetime, reached through the DCP server.

On CPU it is llama.cpp's own server (the same loaded model the llm_inference runtime uses); vLLM takes its
place on a GPU. The daemon never exposes it: renters call ``/api/jobs/{job_id}/endpoint/v1`` on the DCP
server, which relays each request over the daemon's link to this engine on 127.0.0.1.
"""

from __future__ import annotations

import time
from typing import Any

from dcp.agent.runtimes.base import Events, JobFailed, RunResult
from dcp.agent.runtimes.llm import ALIASES, MODEL_ID, LlamaServer, model_available

_STOP_MARGIN_SECONDS = 2.0


class ServeRuntime:
    job_type = "vllm_serve"

    def __init__(self, server: LlamaServer, *, public_base: str, any_model: bool = False) -> None:
        self.server, self.public_base, self.any_model = server, public_base.rstrip("/"), any_model
        self.endpoints: dict[str, str] = {}  # job id → the engine's local address

    def models(self) -> list[str]:
        return [MODEL_ID] if model_available() else []

    def endpoint_for(self, job_id: str) -> str | None:
        return self.endpoints.get(job_id)

    async def prepare(self) -> None:
        await self.server.get()

    async def run(self, spec: dict[str, Any], events: Events) -> RunResult:
        model = str(spec["params"].get("model") or MODEL_ID)
        if not model_available() or (model not in ALIASES and not self.any_model):
            raise JobFailed(f"Model {model!r} is not available on this provider (it serves: {MODEL_ID})")
        events.log(f"starting an OpenAI-compatible server for {MODEL_ID}")
        await self.server.get()
        address = self.server.address
        if address is None:
            raise JobFailed("The engine did not start")
        job_id = spec["job_id"]
        url = f"{self.public_base}/api/jobs/{job_id}/endpoint/v1"
        self.endpoints[job_id] = address
        events.endpoint(url)
        began = time.monotonic()
        # Serve until the renter cancels or the paid duration is up.
        until = began + float(spec["max_duration_seconds"]) - _STOP_MARGIN_SECONDS
        try:
            cancelled = await events.wait_cancelled(until - time.monotonic())
        finally:
            self.endpoints.pop(job_id, None)
        if cancelled:
            raise JobFailed("stopped")
        served = int(time.monotonic() - began)
        return RunResult(result={"endpoint_url": url, "model": MODEL_ID, "served_seconds": served})

    async def close(self) -> None:
        return None


class PoolEngine:
    """The /v1 serving pool: the local engine, kept loaded, announced in heartbeats, reached over the link."""

    POOL_ID = "pool"

    def __init__(self, server: LlamaServer, *, concurrency: int, context: int) -> None:
        self.server, self.concurrency, self.context = server, concurrency, context

    async def start(self) -> None:
        await self.server.get()

    def status(self) -> dict[str, Any]:
        return {
            "models": [MODEL_ID] if model_available() else [],
            "ready": self.server.address is not None,
            "concurrency": self.concurrency,
            "context_length": self.context,
        }
