"""The pages' own defences: CSRF tokens on every form post, a strict CSP, signed session cookies."""

from __future__ import annotations

import re
from urllib.parse import quote

import httpx

from dcp.web import session as cookies
from tests.conftest import SECRET


async def _csrf(client: httpx.AsyncClient, path: str) -> str:
    page = await client.get(path)
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found
    return found.group(1)


class TestCsrf:
    async def test_a_post_without_the_token_changes_nothing(self, client: httpx.AsyncClient) -> None:
        await client.get("/renter/register")
        posted = await client.post("/renter/register", data={"name": "Eve", "email": "eve@example.com"})
        assert posted.status_code == 403
        assert "dcp_session" not in posted.cookies
        renters = await client.get("/api/renters/me", params={"key": "dc1-renter-x"})
        assert renters.status_code == 401

    async def test_a_token_from_another_browser_is_refused(self, client: httpx.AsyncClient) -> None:
        token = await _csrf(client, "/renter/register")
        client.cookies.set(cookies.CSRF_COOKIE, "another-browser")
        posted = await client.post(
            "/renter/register", data={"csrf": token, "name": "Eve", "email": "eve@example.com"}
        )
        assert posted.status_code == 403

    async def test_the_right_token_works(self, client: httpx.AsyncClient) -> None:
        token = await _csrf(client, "/renter/register")
        posted = await client.post(
            "/renter/register", data={"csrf": token, "name": "Eve", "email": "eve@example.com"}
        )
        assert posted.status_code == 201
        assert "dc1-renter-" in posted.text


class TestHeaders:
    async def test_pages_send_a_strict_csp(self, client: httpx.AsyncClient) -> None:
        page = await client.get("/")
        policy = page.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy
        assert "frame-ancestors 'none'" in policy
        assert page.headers["x-content-type-options"] == "nosniff"
        assert "<script>" not in page.text and " style=" not in page.text

    async def test_unknown_pages_answer_a_page_and_api_paths_keep_json(
        self, client: httpx.AsyncClient
    ) -> None:
        page = await client.get("/no-such-page", headers={"accept": "text/html"})
        assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
        api = await client.get("/api/no-such-thing", headers={"accept": "text/html"})
        assert api.status_code == 404 and api.json() == {"error": "Not found"}


class TestSessionCookie:
    def test_a_tampered_cookie_is_ignored(self) -> None:
        secret = SECRET.encode()
        value = cookies.session_cookie(secret, role="renter", account_id=7, fingerprint="f" * 16)
        assert cookies.read_session(secret, value) is not None
        forged = value.replace("renter.7.", "renter.8.", 1)
        assert cookies.read_session(secret, forged) is None
        assert cookies.read_session(b"another secret" * 4, value) is None

    def test_an_expired_cookie_is_ignored(self) -> None:
        secret = SECRET.encode()
        value = cookies.session_cookie(secret, role="admin", account_id=0, fingerprint="f" * 16, now=1000.0)
        assert cookies.read_session(secret, value, now=1000.0 + cookies.SESSION_SECONDS + 1) is None

    async def test_pages_behind_a_role_send_others_to_sign_in(self, client: httpx.AsyncClient) -> None:
        page = await client.get("/renter")
        assert page.status_code == 303 and page.headers["location"] == "/signin?next=/renter"
        listing = await client.get("/renter/jobs", params={"status": "failed", "before": "job-9"})
        where = "/renter/jobs?status=failed&before=job-9"  # signing in comes back to the page as it was asked
        assert listing.headers["location"] == "/signin?next=" + quote(where, safe="/")
        form = await client.get(listing.headers["location"])
        assert f'name="next" value="{where.replace("&", "&amp;")}"' in form.text
