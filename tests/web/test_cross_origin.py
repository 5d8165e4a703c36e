"""The JavaScript SDK in a real browser, on a page served from another origin than the API: CORS lets the
renter's own web app list GPUs, read its balance and submit a job with its key in a header."""

from __future__ import annotations

import functools
import shutil
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Page

from tests.conftest import ADMIN_TOKEN, LiveServer
from tests.support.factories import funded_renter, online_provider

SDK = Path(__file__).parents[2] / "sdk" / "js" / "src"
APP_PAGE = """<!doctype html><meta charset="utf-8"><title>A renter's app</title>
<script type="module">
import { DC1RenterClient } from "./sdk/index.js";
window.renterApp = async (baseUrl, apiKey) => {
  const client = new DC1RenterClient({ baseUrl, apiKey });
  const providers = await client.listProviders();
  const before = await client.balance();
  const job = await client.submitJob({
    jobType: "llm_inference",
    durationMinutes: 1,
    params: { model: "gemma3-270m", prompt: "Hello from another origin", maxTokens: 8 },
  });
  const after = await client.balance();
  return { providers: providers.length, held: after.heldHalala - before.heldHalala, job: job.jobId };
};
document.title = "ready";
</script>"""


@contextmanager
def _served(folder: Path) -> Iterator[str]:
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
async def app_origin(tmp_path: Path) -> AsyncIterator[str]:
    shutil.copytree(SDK, tmp_path / "sdk")
    (tmp_path / "index.html").write_text(APP_PAGE)
    with _served(tmp_path) as url:
        yield url


async def test_the_sdk_works_from_a_page_on_another_origin(page: Page, live: LiveServer, app_origin: str):
    async with httpx.AsyncClient(base_url=live.url) as http:
        await online_provider(http)
        renter = await funded_renter(http, {"x-admin-token": ADMIN_TOKEN})
    await page.goto(f"{app_origin}/index.html")
    await page.wait_for_function("document.title === 'ready'")
    assert app_origin.rsplit(":", 1)[1] != live.url.rsplit(":", 1)[1]  # two origins
    result = await page.evaluate("([url, key]) => window.renterApp(url, key)", [live.url, renter.key])
    assert result["providers"] == 1 and result["held"] > 0 and result["job"].startswith("job-")
    async with httpx.AsyncClient(base_url=live.url) as http:
        job = await http.get(f"/api/jobs/{result['job']}", headers=renter.renter_headers)
    assert job.json()["job"]["status"] in ("pending", "assigned")
