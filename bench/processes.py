"""Processes under test: started pinned to a core, awaited until they answer, and charged their CPU time."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
from pathlib import Path

import httpx

SERVER_CORE = 0
LOAD_CORE = 1
_TICKS = os.sysconf("SC_CLK_TCK")


def pinned(command: list[str], *, core: int) -> list[str]:
    """Pin a process to one core where taskset exists, so the server and the load never share one."""
    return ["taskset", "-c", str(core), *command] if Path("/usr/bin/taskset").exists() else command


async def start(
    command: list[str], *, core: int, env: dict[str, str], cwd: str, log: Path | None = None
) -> subprocess.Popen[bytes]:
    """Start a benchmark process (fixed arguments, no shell) on one core; its output goes to ``log``."""
    return await asyncio.to_thread(_popen, pinned(command, core=core), env=env, cwd=cwd, log=log)


def _popen(command: list[str], *, env: dict[str, str], cwd: str, log: Path | None) -> subprocess.Popen[bytes]:
    with log.open("wb") if log else Path(os.devnull).open("wb") as out:
        # Fixed arguments built by the benchmark itself, no shell.
        return subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)  # noqa: S603


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


async def ready(url: str, *, process: subprocess.Popen[bytes], seconds: float = 60) -> None:
    """Wait until ``url`` answers 200; fail early if the process died."""
    deadline = asyncio.get_running_loop().time() + seconds
    async with httpx.AsyncClient() as http:
        while asyncio.get_running_loop().time() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"{url}: the process exited with {process.returncode}")
            try:
                if (await http.get(url)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {seconds:.0f} s")


async def wait_listening(port: int, *, process: subprocess.Popen[bytes], seconds: float = 10) -> None:
    """Wait until something accepts connections on ``port``; fail early if the process died."""
    for _ in range(int(seconds * 10)):
        if process.poll() is not None:
            raise RuntimeError(f"port {port}: the process exited with {process.returncode}")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.1)
            continue
        writer.close()
        return
    raise RuntimeError(f"nothing listens on port {port} after {seconds:.0f} s")


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process and all its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    times: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # the name may hold spaces and parentheses
        times[int(entry.name)] = (int(fields[11]) + int(fields[12])) / _TICKS
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        total += times.get(current, 0.0)
        todo.extend(children.get(current, []))
    return total


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: list[float], percent: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * percent / 100))]
