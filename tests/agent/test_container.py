"""Renter scripts on the subprocess backend: big output, long lines, a cancel, a daemon that stops, and
processes a script leaves behind."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from dcp.agent.runtimes.base import JobFailed
from dcp.agent.runtimes.container import MAX_OUTPUT_BYTES, ContainerRuntime
from tests.support.polling import until
from tests.support.recording_events import RecordingEvents


def _spec(script: str, seconds: int = 30) -> dict:
    return {"params": {"script": script}, "max_duration_seconds": seconds}


@pytest.fixture
def runtime() -> ContainerRuntime:
    return ContainerRuntime(backend="subprocess", memory_mib=512, allow_network=False)


async def test_a_result_line_past_64_kib_and_output_past_the_cap(runtime):
    script = (
        "import json\n"
        "for n in range(40_000): print('line %06d xxxxxxxxx' % n)\n"  # 800 KB
        "print('DC1_RESULT_JSON:' + json.dumps({'rows': ['r' * 90] * 1000}))\n"  # one line of 95 KB, last
    )
    events = RecordingEvents()
    result = (await runtime.run(_spec(script), events)).result
    assert len(result["output"].encode()) <= MAX_OUTPUT_BYTES  # what the server's 1 MiB limit can take
    assert len(json.dumps(result)) < 1024 * 1024
    assert events.logs[:2] == ["line 000000 xxxxxxxxx", "line 000001 xxxxxxxxx"]
    assert len(events.logs[-1]) == 4096  # the long line, logged by its start


async def test_a_failed_script_says_why_from_stdout_when_stderr_is_empty(runtime):
    with pytest.raises(JobFailed, match="exited with code 3: the input has no rows") as failed:
        await runtime.run(_spec("print('the input has no rows')\nraise SystemExit(3)\n"), RecordingEvents())
    assert failed.value.own_fault  # the renter's script failed: billed for the time it ran


async def test_a_script_with_a_result_past_the_cap_still_ends(runtime):
    script = "import json\nprint('DC1_RESULT_JSON:' + json.dumps({'x': 'y' * 400_000}))\n"
    result = (await runtime.run(_spec(script), RecordingEvents())).result
    assert result["result_json"] is None  # cut at the cap: not JSON any more, and said so by its absence


# The script says it started, then sleeps far longer than any test waits.
SLEEPER = "import time\nprint('started', flush=True)\ntime.sleep(60)\n"


def _running(marker: bytes) -> list[int]:
    """The host's live processes whose command line holds ``marker`` (a script sees only its own PID
    namespace, so it cannot say its process id here)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if marker in command and not _is_zombie(int(entry.name)):
            found.append(int(entry.name))
    return found


_SCRIPTS = f"/dcp-jobs-{os.getpid()}-".encode()  # this process's job folders: its scripts' command lines


async def _started(events: RecordingEvents) -> list[int]:
    async def said_so() -> bool:
        return bool(events.logs)

    await until(said_so, within=10)
    return _running(_SCRIPTS)


async def test_a_cancelled_script_stops_at_once(runtime):
    events = RecordingEvents()
    running = asyncio.create_task(runtime.run(_spec(SLEEPER, seconds=60), events))
    pids = await _started(events)
    assert pids
    events.cancel()
    with pytest.raises(JobFailed, match="stopped") as stopped:
        await asyncio.wait_for(running, timeout=10)  # not the 60 s the script sleeps
    assert not stopped.value.own_fault
    await until(lambda: _gone(pids), within=5)


async def test_a_daemon_that_stops_its_job_stops_the_script(runtime):
    events = RecordingEvents()
    running = asyncio.create_task(runtime.run(_spec(SLEEPER, seconds=60), events))
    pids = await _started(events)
    assert pids
    running.cancel()  # the runner's own limit, or the daemon shutting down
    with pytest.raises(asyncio.CancelledError):
        await running
    await until(lambda: _gone(pids), within=5)


async def test_no_process_a_script_started_outlives_its_job(runtime):
    # Detached into a session of its own, the child would have lived on as the scripts' user, reading the
    # next jobs' files.
    detached = "subprocess.Popen(['sleep', '61.25'], start_new_session=True)"
    script = f"import subprocess\n{detached}\nprint('left')\n"
    await runtime.run(_spec(script), RecordingEvents())
    await until(lambda: asyncio.sleep(0, not _running(b"sleep\x0061.25")), within=5)


async def _gone(pids: list[int]) -> bool:
    return all(_dead(pid) for pid in pids)


def _dead(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except FileNotFoundError:
        return True


async def test_a_host_that_cannot_isolate_scripts_refuses_them_unbilled(monkeypatch):
    # As where unprivileged user namespaces are off: the sandbox, not the renter's script, fails.
    why = "write failed /proc/self/uid_map: Operation not permitted"
    refusing = ["sh", "-c", f"echo '{why}' >&2; exit 1", "--"]
    monkeypatch.setattr("dcp.agent.runtimes.container._ISOLATED", refusing)
    runtime = ContainerRuntime(backend="subprocess", memory_mib=512, allow_network=False)
    assert runtime.unusable is not None and "uid_map" in runtime.unusable
    with pytest.raises(JobFailed, match="cannot run scripts") as refused:
        await runtime.run(_spec("print('hi')\n"), RecordingEvents())
    assert not refused.value.own_fault  # refunded: the provider could not run it


def test_job_folders_are_made_afresh_under_names_no_script_can_guess(runtime):
    other = ContainerRuntime(backend="subprocess", memory_mib=512, allow_network=False)
    folders = [Path(runtime._folder), Path(other._folder)]
    assert folders[0] != folders[1] and all(f.name.startswith(f"dcp-jobs-{os.getpid()}-") for f in folders)
    assert {oct(f.lstat().st_mode & 0o777) for f in folders} == {"0o711"}  # entered, never listed
    assert {f.lstat().st_uid for f in folders} == {os.geteuid()}
