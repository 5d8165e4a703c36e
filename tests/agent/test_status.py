"""The daemon's loopback status page and ``dcp provider status``."""

from __future__ import annotations

import asyncio
import subprocess
import sys

from dcp.agent.status import StatusServer


async def test_status_page_answers_json_on_loopback_only():
    server = StatusServer(0, lambda: {"link": "websocket", "running_jobs": []})
    port = await server.start()
    try:
        answer = await _get(port, b"/status")
        assert answer.startswith("HTTP/1.1 200 OK") and '"link": "websocket"' in answer
        assert (await _get(port, b"/secrets")).startswith("HTTP/1.1 404")
        done = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "dcp.cli", "provider", "status", "--port", str(port)],
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0 and '"link": "websocket"' in done.stdout
    finally:
        await server.close()


async def _get(port: int, path: bytes) -> str:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    answer = (await reader.read()).decode()
    writer.close()
    await writer.wait_closed()
    return answer


async def test_status_command_without_a_daemon():
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "dcp.cli", "provider", "status", "--port", "1"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1 and "no daemon" in done.stderr
