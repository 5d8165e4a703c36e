"""Optional py-spy profiles of a server under load (``BENCH_PROFILE=1``): collapsed stacks and a summary."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

FOLDER = Path(__file__).parent / "results" / "profiles"
PY_SPY = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")


def wanted() -> bool:
    return os.environ.get("BENCH_PROFILE") == "1" and Path(PY_SPY).exists()


@asynccontextmanager
async def recording(pid: int, name: str) -> AsyncIterator[None]:
    """Sample ``pid`` while the block runs (py-spy record, collapsed stacks) when profiling is asked for."""
    if not wanted():
        yield
        return
    FOLDER.mkdir(parents=True, exist_ok=True)
    out = FOLDER / f"{name}.txt"
    # --gil: only the thread holding the GIL, so idle threads (aiosqlite's, waiting) are not counted as work.
    record = ["record", "--pid", str(pid), "--rate", "250", "--gil", "--format", "raw", "-o", str(out)]
    command = [PY_SPY, *record]
    spy = await asyncio.to_thread(
        subprocess.Popen, command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    await asyncio.sleep(1)  # attached
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)
        await asyncio.to_thread(spy.wait, 30)
        if out.exists():
            (FOLDER / f"{name}.top.txt").write_text(top(out))


def top(collapsed: Path, *, count: int = 40) -> str:
    """The functions with the most samples anywhere on the stack (inclusive), as share of all samples."""
    inclusive: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, samples = line.rpartition(" ")
        if not samples.isdigit():
            continue
        total += int(samples)
        for frame in set(stack.split(";")):
            inclusive[frame] += int(samples)
    return "\n".join(f"{n / total:6.1%}  {frame}" for frame, n in inclusive.most_common(count))
