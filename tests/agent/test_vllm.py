"""The vLLM runtime's process handling against a stand-in for vLLM's server (the GPU and vLLM are the only
things not here): start, readiness, streaming, a server that never loads or dies, SIGTERM then SIGKILL."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

from dcp.agent.runtimes.base import JobFailed
from dcp.agent.runtimes.vllm import Launch, VllmEngines, VllmProcess, _lines, stream_completion
from tests.support.recording_events import RecordingEvents

STAND_IN = (sys.executable, str(Path(__file__).parents[1] / "support" / "vllm_stand_in.py"))


def model_folder(root: Path, name: str, **behaviour: object) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "stand_in.json").write_text(json.dumps(behaviour))
    return folder


def lifecycle(folder: Path) -> list[str]:
    path = folder / "lifecycle.log"
    return [line.split(" ", 1)[1] for line in path.read_text().splitlines()] if path.exists() else []


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


async def started(launch: Launch, *, within: float = 20, grace: float = 5) -> VllmProcess:
    server = VllmProcess(STAND_IN, launch, grace_seconds=grace)
    notes: list[str] = []
    await server.start(ready_within=within, note=notes.append)
    assert notes[-1].startswith(f"vLLM serves {launch.model}")
    return server


class TestProcess:
    async def test_started_with_vllms_flags_ready_then_stopped_with_sigterm(self, tmp_path):
        folder = model_folder(tmp_path, "tiny-chat")
        server = await started(Launch("acme/tiny-chat", folder, max_model_len=2048, dtype="float16"))
        argv = json.loads(lifecycle(folder)[0].removeprefix("argv "))
        assert (
            argv[argv.index("--max-model-len") + 1] == "2048" and argv[argv.index("--dtype") + 1] == "float16"
        )
        assert argv[argv.index("--host") + 1] == "127.0.0.1"
        assert argv[argv.index("--served-model-name") + 1] == "acme/tiny-chat"
        assert server.exit_code is None
        await server.stop()
        assert server.exit_code == 0 and lifecycle(folder)[-2:] == ["sigterm", "exit 0"]

    async def test_a_server_that_ignores_sigterm_is_killed_after_the_grace_period(self, tmp_path):
        folder = model_folder(tmp_path, "stubborn", ignore_sigterm=True)
        server = await started(Launch("stubborn", folder, max_model_len=512), grace=0.5)
        began = time.monotonic()
        await server.stop()
        assert server.exit_code == -9 and 0.5 <= time.monotonic() - began < 5
        assert lifecycle(folder)[-1] == "sigterm"

    async def test_a_server_that_never_loads_fails_at_the_deadline(self, tmp_path):
        folder = model_folder(tmp_path, "slow", never_ready=True)
        server = VllmProcess(STAND_IN, Launch("slow", folder, max_model_len=512), grace_seconds=5)
        notes: list[str] = []
        with pytest.raises(JobFailed, match="did not load slow within 1 s"):
            await server.start(ready_within=1.0, note=notes.append)
        assert notes and notes[0].startswith("vLLM is loading slow (")  # progress while it loads
        await server.stop()

    async def test_a_server_that_exits_while_loading_says_why(self, tmp_path):
        folder = model_folder(tmp_path, "bad")
        server = VllmProcess(STAND_IN, Launch("bad", folder, max_model_len=512, dtype="fp8"), grace_seconds=5)
        with pytest.raises(JobFailed, match=r"exited with code 2 while loading bad: .*invalid choice: 'fp8'"):
            await server.start(ready_within=20, note=lambda line: None)

    async def test_a_missing_command_fails_cleanly(self, tmp_path):
        server = VllmProcess(
            ("/nonexistent/vllm",), Launch("m", tmp_path, max_model_len=512), grace_seconds=1
        )
        with pytest.raises(JobFailed, match="vLLM could not be started"):
            await server.start(ready_within=5, note=lambda line: None)


class TestStreaming:
    async def test_a_completion_streams_tokens_and_counts_them(self, tmp_path):
        server = await started(Launch("base", model_folder(tmp_path, "base"), max_model_len=512))
        events = RecordingEvents()
        outcome = await stream_completion(
            server, chat=False, params={"prompt": "The sky is", "max_tokens": 7}, events=events
        )
        await server.stop()
        assert outcome.result["response"] == "stand-in reply from base to: The sky"
        assert len(events.token_texts) == 7 and outcome.tokens_generated == 7
        assert outcome.result["usage"]["completion_tokens"] == 7

    async def test_a_chat_model_gets_the_prompt_as_a_user_message(self, tmp_path):
        server = await started(Launch("chat", model_folder(tmp_path, "chat"), max_model_len=512))
        outcome = await stream_completion(
            server, chat=True, params={"prompt": "Name a colour", "max_tokens": 16}, events=RecordingEvents()
        )
        await server.stop()
        assert outcome.result["response"].endswith("to: Name a colour")
        assert "request /v1/chat/completions stream=True" in lifecycle(tmp_path / "chat")

    async def test_a_server_that_died_fails_the_job_with_its_exit_code(self, tmp_path):
        server = await started(
            Launch("dies", model_folder(tmp_path, "dies", exit_after_ready=0.5), max_model_len=512)
        )
        await server.wait_exit(10)
        with pytest.raises(JobFailed, match="vLLM stopped answering"):
            await stream_completion(server, chat=False, params={"prompt": "hi"}, events=RecordingEvents())
        await server.stop()


class TestEngines:
    def engines(self, idle: float = 60) -> VllmEngines:
        return VllmEngines(STAND_IN, ready_seconds=20, grace_seconds=5, idle_seconds=idle)

    async def test_llm_jobs_share_a_warm_server_and_it_stops_when_idle(self, tmp_path):
        engines = self.engines(idle=0.3)
        launch = Launch("warm", model_folder(tmp_path, "warm"), max_model_len=512)
        async with engines.use(launch, keep_warm=True, note=lambda line: None) as first:
            pass
        async with engines.use(launch, keep_warm=True, note=lambda line: None) as second:
            assert second is first and first.exit_code is None
        deadline = time.monotonic() + 10
        while first.exit_code is None:
            assert time.monotonic() < deadline, "the idle server was never stopped"
            await first.wait_exit(0.2)
        assert engines.current is None and lifecycle(tmp_path / "warm").count("ready") == 1

    async def test_a_serve_jobs_server_stops_when_the_job_ends(self, tmp_path):
        engines = self.engines()
        launch = Launch("served", model_folder(tmp_path, "served"), max_model_len=512)
        async with engines.use(launch, keep_warm=False, note=lambda line: None) as server:
            pid = server._started.process.pid
        assert server.exit_code == 0 and gone(pid) and engines.current is None

    async def test_another_model_waits_for_no_one_but_a_busy_gpu_refuses(self, tmp_path):
        engines = self.engines()
        first = Launch("one", model_folder(tmp_path, "one"), max_model_len=512)
        second = Launch("two", model_folder(tmp_path, "two"), max_model_len=512)
        async with engines.use(first, keep_warm=True, note=lambda line: None) as one:
            with pytest.raises(JobFailed, match="busy serving one"):
                async with engines.use(second, keep_warm=True, note=lambda line: None):
                    pass
        async with engines.use(second, keep_warm=True, note=lambda line: None) as two:
            assert one.exit_code == 0 and two.exit_code is None  # the idle one made way
        await engines.close()
        assert two.exit_code == 0

    async def test_a_load_cancelled_half_way_stops_the_server(self, tmp_path):
        engines = self.engines()
        folder = model_folder(tmp_path, "slow", never_ready=True)

        def loading() -> bool:  # the renter cancels once vLLM runs
            return bool(lifecycle(folder))

        with pytest.raises(JobFailed, match="stopped"):
            async with engines.use(
                Launch("slow", folder, max_model_len=512),
                keep_warm=False,
                note=lambda line: None,
                cancelled=loading,
            ):
                pass
        assert engines.current is None and lifecycle(folder)[-2:] == ["sigterm", "exit 0"]


async def test_stream_lines_are_joined_across_pieces_of_the_body():
    async def pieces():
        for piece in ('data: {"a"', ": 1}\r\n\r\ndata: [DO", "NE]\r\n", "tail"):
            yield piece

    assert [line async for line in _lines(pieces())] == ['data: {"a": 1}', "", "data: [DONE]", "tail"]
