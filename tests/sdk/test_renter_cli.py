"""The renter's ``dcp`` commands, run in-process through ``dcp.cli.main`` against a real server."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import stat
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from dcp import cli
from tests.support.factories import funded_renter, online_provider
from tests.support.postgres import free_port
from tests.support.provider_client import TestProvider

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(32))
BOUNDED = ("--timeout", "30")  # a failing test must not leave a command waiting for ten minutes


@dataclass
class Ran:
    code: int
    out: str
    err: str


class Terminal:
    """Runs ``dcp`` in a thread (the server shares this event loop) and keeps what it prints."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.monkeypatch = monkeypatch
        self.out, self.err = io.StringIO(), io.StringIO()

    async def __call__(self, *argv: str) -> Ran:
        return await self.start(*argv)

    def start(self, *argv: str) -> asyncio.Task[Ran]:
        self.out, self.err = io.StringIO(), io.StringIO()
        self.monkeypatch.setattr(sys, "stdout", self.out)
        self.monkeypatch.setattr(sys, "stderr", self.err)
        return asyncio.create_task(self._run(list(argv)))

    async def _run(self, argv: list[str]) -> Ran:
        code = await asyncio.to_thread(cli.main, argv)
        return Ran(code, self.out.getvalue(), self.err.getvalue())

    async def printed(self, check: Callable[[str, str], bool], within: float = 10.0) -> None:
        """Poll what has been printed so far, with a deadline."""
        deadline = time.monotonic() + within
        while not check(self.out.getvalue(), self.err.getvalue()):
            assert time.monotonic() < deadline, (self.out.getvalue(), self.err.getvalue())
            await asyncio.sleep(0.01)


@pytest.fixture
def config_home(tmp_path, monkeypatch):
    home = tmp_path / "config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    monkeypatch.delenv("DCP_API_KEY", raising=False)
    monkeypatch.delenv("DCP_BASE_URL", raising=False)
    return home


@pytest.fixture
def dcp(config_home, monkeypatch) -> Terminal:
    return Terminal(monkeypatch)


@pytest.fixture
async def http(live):
    import httpx

    async with httpx.AsyncClient(base_url=live.url, timeout=30) as client:
        yield client


async def _logged_in(dcp: Terminal, live, http, admin, amount: int = 10_000):
    renter = await funded_renter(http, admin, amount=amount)
    assert (await dcp("login", "--api-key", renter.key, "--base-url", live.url)).code == 0
    return renter


async def test_login_verifies_the_key_and_keeps_it_private(live, http, admin, dcp, config_home, monkeypatch):
    renter = await funded_renter(http, admin, amount=2500)
    ran = await dcp("login", "--api-key", renter.key, "--base-url", live.url + "/")
    assert ran.code == 0 and "Balance 25.00 SAR" in ran.out, ran
    stored = config_home / "dcp" / "credentials.json"
    assert json.loads(stored.read_text()) == {"api_key": renter.key, "base_url": live.url}
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert stat.S_IMODE(stored.parent.stat().st_mode) == 0o700
    stored.chmod(0o644)
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"{renter.key}\n"))  # piped: `echo $KEY | dcp login`
    assert (await dcp("login", "--base-url", live.url)).code == 0
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    ran = await dcp("balance")
    assert ran.out == "balance  25.00 SAR\nheld     0.00 SAR  (for jobs still running)\n"
    ran = await dcp("balance", "--json")
    assert json.loads(ran.out) == {
        "balance_halala": 2500,
        "held_halala": 0,
        "balance_sar": "25.00",
        "held_sar": "0.00",
    }
    assert (await dcp("logout")).code == 0 and not stored.exists()
    ran = await dcp("balance")
    assert ran.code == 2 and "not logged in: run `dcp login`" in ran.err


async def test_login_refuses_what_it_cannot_verify(live, http, dcp, config_home):
    stored = config_home / "dcp" / "credentials.json"
    ran = await dcp("login", "--api-key", "dc1-renter-nope", "--base-url", live.url)
    assert ran.code == 1 and ran.err.startswith("dcp: error: ") and "dcp login" in ran.err
    assert "Traceback" not in ran.err and not stored.exists()
    provider = await online_provider(http)
    ran = await dcp("login", "--api-key", provider.key, "--base-url", live.url)
    assert ran.code == 2 and "not a renter key" in ran.err and not stored.exists()
    ran = await dcp("login", "--api-key", " ", "--base-url", live.url)
    assert ran.code == 2 and "no key given" in ran.err
    silent = f"http://127.0.0.1:{free_port()}"
    ran = await dcp("balance", "--api-key", "dc1-renter-x", "--base-url", silent)
    assert ran.code == 1 and ran.err == f"dcp: error: DCP at {silent} is unreachable (ConnectError)\n"


async def test_gpus_lists_the_live_providers(live, http, admin, dcp):
    provider = await online_provider(http, name="Riyadh Node")
    await _logged_in(dcp, live, http, admin)
    ran = await dcp("gpus")
    header, row = ran.out.splitlines()
    assert header.split() == ["ID", "NAME", "GPU", "VRAM", "STATUS", "LLM/MIN", "IMAGE/MIN", "SCRIPT/MIN"]
    assert (
        " ".join(row.split()) == f"{provider.id} Riyadh Node RTX 4090 24 GB online 0.15 SAR 0.20 SAR 0.10 SAR"
    )
    assert [p["id"] for p in json.loads((await dcp("gpus", "--json")).out)] == [provider.id]
    ran = await dcp("gpus", "--min-vram", "80")
    assert ran.code == 0 and ran.out == "" and "No GPUs match" in ran.err


async def test_run_llm_prints_tokens_as_they_come(live, http, admin, dcp):
    daemon = TestProvider(http, await online_provider(http))
    await _logged_in(dcp, live, http, admin)
    running = dcp.start(
        "run", "llm", "Capital of Saudi Arabia?", "--model", "gemma3-270m", "--wait", *BOUNDED
    )
    await dcp.printed(lambda out, err: "[pending" in err)  # the stream's snapshot: it is following
    leased = await daemon.claim(wait=10)
    assert leased.spec["params"]["prompt"] == "Capital of Saudi Arabia?"
    await daemon.start(leased)
    await daemon.events(leased, tokens=["Ri"], logs=["loading gemma3-270m"])  # the daemon's note: stderr
    await daemon.events(leased, tokens=["yadh", "\n"])
    await dcp.printed(lambda out, err: out == "Riyadh\n")  # printed before the job has even finished
    await daemon.result(leased, result={"response": "Riyadh"}, tokens_generated=2)
    ran = await running
    assert ran.code == 0 and ran.out == "Riyadh\n"  # once: the answer is the same but for its last newline
    assert "[running]" in ran.err and "completed; cost" in ran.err and "loading gemma3-270m" in ran.err


async def test_run_image_saves_the_png(live, http, admin, dcp, tmp_path):
    daemon = TestProvider(http, await online_provider(http))
    await _logged_in(dcp, live, http, admin)
    target = tmp_path / "out.png"
    running = dcp.start("run", "image", "red", "-o", str(target), "--width", "64", "--steps", "4", *BOUNDED)
    leased = await daemon.claim(wait=10)
    assert leased.spec["params"]["width"] == 64 and leased.spec["params"]["steps"] == 4
    await daemon.start(leased)
    await daemon.result(leased, result={"image_base64": base64.b64encode(PNG).decode(), "format": "png"})
    ran = await running
    assert ran.code == 0 and ran.out == f"{target}\n" and target.read_bytes() == PNG


async def test_run_script_prints_its_output(live, http, admin, dcp, tmp_path):
    daemon = TestProvider(http, await online_provider(http))
    await _logged_in(dcp, live, http, admin)
    script = tmp_path / "train.py"
    script.write_text("print('hello')\nprint('world')\n")
    running = dcp.start("run", "script", str(script), "--duration", "2", *BOUNDED)
    leased = await daemon.claim(wait=10)
    assert leased.spec["params"]["script"] == script.read_text()
    await daemon.start(leased)
    await daemon.events(leased, logs=["hello"])
    await daemon.result(leased, result={"output": "hello\nworld\n", "exit_code": 0})
    ran = await running
    assert ran.code == 0 and ran.out == "hello\nworld\n"
    ran = await dcp("run", "script", str(tmp_path / "missing.py"))
    assert ran.code == 1 and "missing.py" in ran.err and "Traceback" not in ran.err


async def test_failures_and_timeouts_have_their_own_exit_codes(live, http, admin, dcp):
    daemon = TestProvider(http, await online_provider(http))
    await _logged_in(dcp, live, http, admin)
    running = dcp.start("run", "llm", "hi", *BOUNDED)
    leased = await daemon.claim(wait=10)
    await daemon.start(leased)
    await daemon.result(leased, status="failed", error="CUDA out of memory")
    ran = await running
    assert ran.code == 3 and "CUDA out of memory" in ran.err and ran.out == ""
    running = dcp.start("run", "llm", "hi", "--json", *BOUNDED)
    leased = await daemon.claim(wait=10)
    await daemon.start(leased)
    await daemon.result(leased, status="failed", error="CUDA out of memory")
    ran = await running
    outcome = json.loads(ran.out)  # it printed nothing
    assert ran.code == 3 and (outcome["status"], outcome["error"]) == ("failed", "CUDA out of memory")
    ran = await dcp("run", "llm", "hi", "--timeout", "0.5")
    assert ran.code == 4 and "is still running" in ran.err
    ran = await dcp("run", "llm", "hi", "--timeout", "0.5", "--json")
    assert ran.code == 4 and json.loads(ran.out)["status"] == "pending"
    pending = (await dcp("run", "llm", "hi", "--no-wait")).out.strip()
    assert pending.startswith("job-")
    poor = await funded_renter(http, admin, amount=1)
    ran = await dcp("run", "llm", "hi", "--api-key", poor.key)
    assert ran.code == 1
    assert (
        ran.err
        == "dcp: error: insufficient balance: the job needs 0.75 SAR held, you have 0.01 SAR available\n"
    )


async def test_jobs_lists_shows_and_cancels(live, http, admin, dcp):
    daemon = TestProvider(http, await online_provider(http))
    await _logged_in(dcp, live, http, admin)
    running = dcp.start("run", "llm", "Capital?", "--duration", "2", *BOUNDED)
    leased = await daemon.claim(wait=10)
    await daemon.start(leased)
    await daemon.result(leased, result={"response": "Riyadh"})
    assert (await running).code == 0
    queued = (await dcp("run", "llm", "later", "--no-wait")).out.strip()
    listing = (await dcp("jobs")).out.splitlines()
    assert listing[0].split() == ["JOB", "TYPE", "STATUS", "SUBMITTED", "COST"]
    assert [line.split()[:3] for line in listing[1:]] == [
        [queued, "llm_inference", "pending"],
        [leased.job_id, "llm_inference", "completed"],
    ]
    completed = json.loads((await dcp("jobs", "--status", "completed", "--json")).out)
    assert [job["job_id"] for job in completed] == [leased.job_id]
    shown = (await dcp("job", leased.job_id)).out
    assert "status     completed" in shown and "output     Riyadh" in shown
    shown = json.loads((await dcp("jobs", "show", leased.job_id, "--json")).out)
    assert shown["output"]["result"] == {"response": "Riyadh"}
    ran = await dcp("jobs", "cancel", queued)
    assert ran.out == f"{queued} cancelled; charged 0.00 SAR, refunded 0.75 SAR\n"
    ran = await dcp("jobs", "cancel", queued)
    assert ran.code == 1 and ran.err.startswith("dcp: error: ") and "Traceback" not in ran.err
    ran = await dcp("jobs", "show", "job-missing")
    assert ran.code == 1 and "not found" in ran.err.lower()
    with pytest.raises(SystemExit) as refused:  # argparse's usage error, as for any bad option
        cli.main(["jobs", "--limit", "-1"])
    assert refused.value.code == 2 and "'-1' is not a whole number of 1 or more" in dcp.err.getvalue()
