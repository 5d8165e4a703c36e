"""The daemon itself: wires telemetry, the link, the runner and the runtimes, and runs until stopped."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from typing import Any

import httpx

from dcp.agent import DAEMON_VERSION
from dcp.agent.capabilities import Capabilities, detect
from dcp.agent.config import AgentConfig
from dcp.agent.home_lock import CannotStart, one_daemon_per_home
from dcp.agent.link import Link, ServerClient
from dcp.agent.runner import Runner
from dcp.agent.runtimes.base import Runtime
from dcp.agent.runtimes.container import ContainerRuntime
from dcp.agent.runtimes.image import ImageRuntime
from dcp.agent.runtimes.llm import LlamaServer, LlmRuntime
from dcp.agent.runtimes.serve import PoolEngine, ServeRuntime, VllmPool
from dcp.agent.runtimes.vllm import Launch, VllmEngines
from dcp.agent.state import JobStore
from dcp.agent.status import StatusServer
from dcp.agent.telemetry import heartbeat_body
from dcp.agent.update import Release, Updater, running_archive
from dcp.kit.keys import normalize
from dcp.kit.signing import signing_key_for

log = logging.getLogger("dcp.agent")


def build_runtimes(
    config: AgentConfig, llama: LlamaServer, capabilities: Capabilities, vllm: VllmEngines | None
) -> dict[str, Runtime]:
    any_model = config.answer_any_model
    runtimes: list[Runtime] = [
        LlmRuntime(llama, capabilities=capabilities, vllm=vllm, any_model=any_model),
        ServeRuntime(
            llama, capabilities=capabilities, vllm=vllm, public_base=config.server, any_model=any_model
        ),
        ImageRuntime(capabilities=capabilities, threads=config.llm_threads, any_model=any_model),
        ContainerRuntime(
            backend=config.container_backend,
            memory_mib=config.container_memory_mib,
            allow_network=config.allow_network,
        ),
    ]
    return {runtime.job_type: runtime for runtime in runtimes}


def build_pool(
    config: AgentConfig, llama: LlamaServer, capabilities: Capabilities, vllm: VllmEngines | None
) -> PoolEngine | VllmPool | None:
    """The /v1 pool's engine: vLLM with one of the provider's models where it has them, else llama.cpp."""
    if not config.serve_pool:
        return None
    models = capabilities.llm_models if capabilities.vllm else {}
    if vllm is not None and models:
        weights = models.get(config.pool_model or "") or next(iter(models.values()))
        launch = Launch(weights.name, weights.path, max_model_len=config.llm_context)
        return VllmPool(vllm, launch, concurrency=config.slots)
    if not capabilities.gguf_models:
        return None
    return PoolEngine(llama, concurrency=config.slots, context=config.llm_context)


class Daemon:
    def __init__(
        self,
        config: AgentConfig,
        *,
        runtimes: dict[str, Runtime] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        capabilities: Capabilities | None = None,
    ) -> None:
        self.config = config
        self.client = ServerClient(config.server, config.key, transport=transport)
        self.capabilities = capabilities if capabilities is not None else detect(config)
        self.llama = LlamaServer(
            cache_dir=config.model_cache,
            threads=config.llm_threads,
            context=config.llm_context,
            slots=config.slots,
            gpu_backends=self.capabilities.llama_gpu,
        )
        self.vllm = (
            VllmEngines(
                self.capabilities.vllm_command,
                ready_seconds=config.vllm_ready_seconds,
                grace_seconds=config.vllm_stop_grace_seconds,
                idle_seconds=config.vllm_idle_seconds,
            )
            if self.capabilities.vllm
            else None
        )
        self.runtimes = (
            runtimes
            if runtimes is not None
            else build_runtimes(config, self.llama, self.capabilities, self.vllm)
        )
        self.pool = build_pool(config, self.llama, self.capabilities, self.vllm)
        self.runner = Runner(
            client=self.client,
            runtimes=self.runtimes,
            store=JobStore(config.state_dir),
            signing_key=signing_key_for(normalize(config.key)),
            slots=config.slots,
        )
        self.link = Link(
            self.client,
            on_task=self.runner.accept,
            on_stop=self.runner.stop,
            has_free_slot=self.runner.has_free_slot,
            endpoint_for=self.endpoint_for,
        )
        self.runner.on_free_slot.append(self.link.ready.set)
        self.status = StatusServer(config.status_port, self.describe)
        self.updater = Updater(
            self.client.http,
            public_key=config.release_key,
            auto_update=config.auto_update,
            current_version=DAEMON_VERSION,
            target=running_archive(),
            retry_seconds=config.update_retry_seconds,
        )
        self.release: Release | None = None
        self._restart = asyncio.Event()
        self._beat_now = asyncio.Event()  # news the server should hear before the next beat is due
        self.last_answer: dict[str, Any] = {}
        self._preloading: set[str] = set()
        self._background: set[asyncio.Task[None]] = set()

    def endpoint_for(self, job_id: str) -> str | None:
        """The local engine a relayed request goes to: the /v1 pool's, or a vllm_serve job's."""
        if job_id == PoolEngine.POOL_ID:
            return self.pool.address if self.pool is not None else None
        serving = self.runtimes.get("vllm_serve")
        return serving.endpoint_for(job_id) if isinstance(serving, ServeRuntime) else None

    def describe(self) -> dict[str, Any]:
        return {
            "daemon_version": DAEMON_VERSION,
            "server": self.config.server,
            "link": self.link.mode,
            "running_jobs": sorted(self.runner.running),
            "finished_jobs": self.runner.finished,
            "slots": self.config.slots,
            "models": self.cached_models(),
            "capabilities": self.capabilities.describe(),
            "last_heartbeat": self.last_answer,
        }

    def cached_models(self) -> list[str]:
        return sorted({model for runtime in self.runtimes.values() for model in runtime.models()})

    async def heartbeat_loop(self) -> None:
        while True:
            body = await asyncio.to_thread(
                heartbeat_body,
                cached_models=self.cached_models(),
                slots=self.config.slots,
                home=str(self.config.home),
            )
            if self.pool is not None:
                body["serving"] = self.pool.status()
            try:
                self.last_answer = await self.client.heartbeat(body)
                self._act_on(self.last_answer)
            except httpx.HTTPError as exc:
                log.warning("heartbeat failed: %s", exc)
            except Exception:  # never a daemon that stops beating for good: it beats again
                log.exception("heartbeat failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._beat_now.wait(), timeout=self.config.heartbeat_seconds)
            self._beat_now.clear()

    def _act_on(self, answer: dict[str, Any]) -> None:
        if answer.get("needs_update"):
            log.warning(
                "this daemon (%s) is older than the server's minimum %s",
                DAEMON_VERSION,
                answer.get("min_version"),
            )
        # Only while idle, so an update never cuts a job short; a job that lands during the download is
        # handled as on any stop (drained, then recovered after the restart).
        if self.release is None and not self.runner.running and self.updater.wanted(answer):
            updating = asyncio.create_task(self._update())
            self._background.add(updating)
            updating.add_done_callback(self._background.discard)
        if not answer.get("approved"):
            log.warning("this provider is %s: it will not receive jobs", answer.get("approval_status"))
        model = answer.get("preload_model")
        if model and model not in self._preloading:
            self._preloading.add(model)
            preparing = [runtime for runtime in self.runtimes.values() if model in runtime.models()]
            if preparing:
                self._background.add(asyncio.create_task(self._prepare(model, preparing[0])))

    async def _update(self) -> None:
        release = await self.updater.prepare()
        if release is not None:
            self.release = release
            self._restart.set()

    async def _prepare(self, what: str, runtime: Runtime | PoolEngine | VllmPool) -> None:
        log.info("preparing %s ahead of demand", what)
        try:
            await (runtime.start() if isinstance(runtime, PoolEngine | VllmPool) else runtime.prepare())
        except Exception:
            log.exception("could not prepare %s", what)
            return
        if runtime is self.pool:  # the /v1 pool serves now: say so at once, not at the next beat
            self._beat_now.set()

    async def run(self, stop: asyncio.Event | None = None) -> int:
        """Run until SIGINT/SIGTERM, until ``stop`` is set when the caller owns the signals, or until a
        verified update is ready; returns the process's exit code (RESTART_EXIT_CODE after an update).
        CannotStart when another daemon uses this home folder, or the status port is taken."""
        self.config.home.mkdir(parents=True, exist_ok=True)
        with one_daemon_per_home(self.config.home):
            return await self._run(stop)

    async def _run(self, stop: asyncio.Event | None) -> int:
        try:
            port = await self.status.start()
        except OSError as exc:
            raise CannotStart(
                f"the status port {self.config.status_port} is taken ({exc.strerror}): "
                "choose another with --status-port, or 0 for any"
            ) from None
        log.info(
            "dcp daemon %s for %s; status on http://127.0.0.1:%d/status",
            DAEMON_VERSION,
            self.config.server,
            port,
        )
        recovering = self.runner.recovery()
        if self.pool is not None:
            self._background.add(asyncio.create_task(self._prepare("the /v1 pool engine", self.pool)))
        recovery = asyncio.create_task(recovering)
        loops = [asyncio.create_task(self.heartbeat_loop()), asyncio.create_task(self.link.run())]
        if stop is None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError):  # Windows
                    loop.add_signal_handler(sig, stop.set)
        waits = [asyncio.create_task(stop.wait()), asyncio.create_task(self._restart.wait())]
        await asyncio.wait([*waits, *loops], return_when=asyncio.FIRST_COMPLETED)
        # The loops run until cancelled: one that ended broke, and a daemon that no longer beats or links
        # must exit, so that its service manager starts it again.
        broken = [ended for ended in loops if ended.done()]
        for ended in broken:
            log.error("stopping: a loop of the daemon ended", exc_info=ended.exception())
        log.info("stopping: finishing running jobs")
        recovery.cancel()
        for task in [*loops, *waits]:
            task.cancel()
        await self.runner.drain()
        await self.status.close()
        for runtime in self.runtimes.values():
            await runtime.close()
        if self.pool is not None:
            await self.pool.close()
        if self.vllm is not None:
            await self.vllm.close()
        await self.client.close()
        if broken:
            return 1
        # Swapped only now: the running code is never replaced while it may still import from its archive.
        return self.updater.install(self.release) if self.release is not None else 0
