"""custom_container: run the renter's script under limits, capture its output, parse DC1_RESULT_JSON.

Two backends behind one runtime:

- ``docker`` (production): the approved image, ``--network none`` unless allowed, read-only root, no
  capabilities, no new privileges, an unprivileged user, memory/CPU/process limits, GPUs passed through.
- ``subprocess`` (tests, and hosts without Docker): a fresh working directory with a clean environment (no
  DCP key or settings), CPU-time, memory, file-size and open-file limits, a wall-clock limit, and, through
  ``unshare``, a PID namespace of its own (when the script ends, or the daemon dies, every process it started
  ends with it; it sees only its own processes) and no network (a new network namespace) unless allowed.
  When the daemon runs as root, scripts run as the unprivileged ``nobody`` user so the daemon's 0600 key and
  state cannot be read, in working directories under a folder they cannot list. It cannot hide the rest of
  the filesystem from the script the way a container does.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import logging
import os
import pwd
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from dcp.agent.runtimes.base import Events, JobFailed, RunResult

log = logging.getLogger("dcp.agent.container")
RESULT_MARKER = "DC1_RESULT_JSON:"
# The output kept for the result: with the result JSON parsed from it and stderr's tail, the report must
# stay under the server's 1 MiB body limit (at 1 MiB kept, every report of a chatty script was refused).
MAX_OUTPUT_BYTES = 256 * 1024
_READ_BYTES = 64 * 1024
_LOGGED_LINE = 4096
DEFAULT_IMAGE = "dc1/general-worker:latest"
WORKER_PATH = "/usr/local/bin:/usr/bin:/bin"


class ContainerRuntime:
    job_type = "custom_container"

    def __init__(self, *, backend: str, memory_mib: int, allow_network: bool) -> None:
        if backend == "docker" and shutil.which("docker") is None:
            raise ValueError("the docker backend needs the docker command")
        self.backend, self.memory_mib, self.allow_network = backend, memory_mib, allow_network
        _remove_job_folders_of_dead_daemons()
        self._folder = _new_job_folder()
        # Why scripts cannot be isolated here (found once, at start), or None: such a host runs no script,
        # and a renter is not billed for a sandbox that would not start.
        self.unusable = self._sandbox_problem() if backend == "subprocess" else None
        if self.unusable:
            log.warning("custom_container jobs are refused here: %s", self.unusable)

    def models(self) -> list[str]:
        return []

    async def prepare(self) -> None:
        return None

    async def run(self, spec: dict[str, Any], events: Events) -> RunResult:
        params = spec["params"]
        if self.unusable:
            raise JobFailed(f"This provider cannot run scripts: {self.unusable}")
        if params.get("network") and not self.allow_network:
            raise JobFailed("This provider does not allow network access for scripts")
        limit = int(spec["max_duration_seconds"])
        with tempfile.TemporaryDirectory(prefix="dcp-job-", dir=self._folder) as workdir:
            script = Path(workdir) / "script.py"
            script.write_text(params["script"])
            command, preexec = self._command(
                script,
                image=params.get("image_override") or DEFAULT_IMAGE,
                network=bool(params.get("network")),
                limit=limit,
            )
            if os.geteuid() == 0 and self.backend == "subprocess":
                os.chown(workdir, *_nobody())
                os.chown(script, *_nobody())
            process = await asyncio.create_subprocess_exec(
                *command,
                cwd=workdir,
                env=_clean_env(workdir),
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                preexec_fn=preexec,
                start_new_session=True,
            )
            stopper = asyncio.create_task(_stop_when_cancelled(process, events, limit))
            try:
                stdout, stderr = await asyncio.wait_for(_collect(process, events), timeout=limit)
            except TimeoutError:
                message = f"The script exceeded its time limit of {limit} s and was stopped"
                raise JobFailed(message, own_fault=True) from None
            finally:  # timed out, cancelled, or this task was (the daemon stopping): the script stops too
                stopper.cancel()
                if process.returncode is None:
                    _kill_group(process)
        if events.cancelled:
            raise JobFailed("stopped")
        output = stdout.decode(errors="replace")
        if process.returncode != 0:  # why, from stderr, or from stdout for a script that printed there
            tail = (stderr.strip() or stdout).decode(errors="replace")[-2000:]
            # docker run's own failures (125: the daemon, 126/127: the image's command) are the provider's
            script_failed = self.backend != "docker" or process.returncode not in (125, 126, 127)
            message = f"The script exited with code {process.returncode}: {tail}"
            raise JobFailed(message, own_fault=script_failed)
        return RunResult(
            result={
                "output": output,
                "stderr": stderr.decode(errors="replace")[-20000:],
                "result_json": _result_json(output),
                "exit_code": 0,
            }
        )

    def _command(self, script: Path, *, image: str, network: bool, limit: int) -> tuple[list[str], Any]:
        if self.backend == "docker":
            command = [
                "docker",
                "run",
                "--rm",
                "--read-only",
                "--tmpfs",
                "/tmp:size=256m",  # noqa: S108 - a tmpfs inside the container
                "--cap-drop",
                "ALL",
                "--security-opt",
                "no-new-privileges",
                "--user",
                "65534:65534",
                "--pids-limit",
                "256",
                "--memory",
                f"{self.memory_mib}m",
                "--stop-timeout",
                "5",
                "-v",
                f"{script.parent}:/work:ro",
                "-w",
                "/work",
            ]
            if not network:
                command += ["--network", "none"]
            if shutil.which("nvidia-smi"):
                command += ["--gpus", "all"]
            return [*command, image, "python", "/work/script.py"], None
        isolated = [*_ISOLATED, *([] if network else ["--net"])]
        return [*isolated, _worker_python(), "-I", str(script)], _limits(
            memory_mib=self.memory_mib, cpu_seconds=limit + 5
        )

    def _sandbox_problem(self) -> str | None:
        if shutil.which("unshare") is None:
            return "util-linux's unshare is not installed, so scripts cannot be isolated"
        try:
            probe = subprocess.run(  # noqa: S603 - a fixed command
                [*_ISOLATED, "--net", "true"],
                preexec_fn=_limits(memory_mib=self.memory_mib, cpu_seconds=5),
                capture_output=True,
                timeout=30,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"unshare could not run ({exc})"
        if probe.returncode != 0:
            why = probe.stderr.decode(errors="replace").strip()[-300:]
            return f"unshare cannot make namespaces for scripts ({why}); enable unprivileged user namespaces"
        return None

    async def close(self) -> None:
        shutil.rmtree(self._folder, ignore_errors=True)


async def _collect(process: asyncio.subprocess.Process, events: Events) -> tuple[bytes, bytes]:
    if process.stdout is None or process.stderr is None:
        raise RuntimeError("the script's output is not captured")

    async def read(stream: asyncio.StreamReader, forward: bool) -> bytes:
        # In pieces, not lines: a line past asyncio's 64 KiB line limit (a big DC1_RESULT_JSON) raised.
        kept, pending = bytearray(), b""
        while piece := await stream.read(_READ_BYTES):
            if len(kept) < MAX_OUTPUT_BYTES:
                kept += piece[: MAX_OUTPUT_BYTES - len(kept)]
            if forward:
                *lines, pending = (pending + piece).split(b"\n")
                for line in lines:
                    events.log(_logged(line))
                pending = pending[: 4 * _LOGGED_LINE]  # only a line's start is logged
        if forward and pending:
            events.log(_logged(pending))
        return bytes(kept)

    stdout, stderr = await asyncio.gather(read(process.stdout, True), read(process.stderr, False))
    await process.wait()
    return stdout, stderr


def _logged(line: bytes) -> str:
    return line.decode(errors="replace").rstrip()[:_LOGGED_LINE]


async def _stop_when_cancelled(process: asyncio.subprocess.Process, events: Events, limit: int) -> None:
    """The renter cancelled (or another provider took the job): the script stops at once."""
    if await events.wait_cancelled(limit + 60):
        _kill_group(process)


def _result_json(output: str) -> Any:
    for line in reversed(output.splitlines()):
        if line.startswith(RESULT_MARKER):
            try:
                return json.loads(line[len(RESULT_MARKER) :])
            except ValueError:
                return None
    return None


def _clean_env(workdir: str) -> dict[str, str]:
    return {"PATH": WORKER_PATH, "HOME": workdir, "LANG": "C.UTF-8", "PYTHONUNBUFFERED": "1"}


def _worker_python() -> str:
    """The host's Python for renter scripts, not the daemon's own environment (which holds its packages
    and, under a home folder, may not be readable by the unprivileged user scripts run as)."""
    return shutil.which("python3", path=WORKER_PATH) or sys.executable


# A PID namespace of its own (its processes die with it; it sees only its own) in a user namespace, so that
# the unprivileged user scripts run as can make it.
_ISOLATED = ["unshare", "--map-root-user", "--pid", "--fork", "--kill-child", "--mount-proc"]
_JOB_FOLDERS = "dcp-jobs-"


def _new_job_folder() -> str:
    """This daemon's folder of job working directories, made afresh under a random name (none can be made
    for it in advance): traversable, not listable, by the scripts' user, so that a script cannot find
    another job's directory, each named at random too."""
    folder = tempfile.mkdtemp(prefix=f"{_JOB_FOLDERS}{os.getpid()}-")
    os.chmod(folder, 0o711)  # noqa: S103 - enter, never list
    return folder


def _remove_job_folders_of_dead_daemons() -> None:
    """What a daemon killed mid-job left behind (its scripts, their outputs), before any new job runs."""
    for folder in Path(tempfile.gettempdir()).glob(f"{_JOB_FOLDERS}*-*"):
        pid = folder.name.removeprefix(_JOB_FOLDERS).split("-")[0]
        if pid.isdigit() and not _alive(int(pid)) and not folder.is_symlink():
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _nobody() -> tuple[int, int]:
    entry = pwd.getpwnam("nobody")
    return entry.pw_uid, entry.pw_gid


def _limits(*, memory_mib: int, cpu_seconds: int) -> Any:
    drop_to_nobody = os.geteuid() == 0
    ids = _nobody() if drop_to_nobody else (0, 0)
    libc = ctypes.CDLL(None, use_errno=True)  # found here: the child only calls it

    def apply() -> None:  # runs in the child, before the script
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds))
        memory = memory_mib * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        resource.setrlimit(resource.RLIMIT_FSIZE, (256 * 1024 * 1024,) * 2)
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
        if drop_to_nobody:
            os.setgroups([])
            os.setgid(ids[1])
            os.setuid(ids[0])
        # Set last (a change of user clears it): if the daemon dies, the script is killed with it.
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)

    return apply


_PR_SET_PDEATHSIG = 1


def _kill_group(process: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
