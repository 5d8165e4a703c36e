"""Cross-origin calls to the API: a renter's web app on its own origin may call /api and /v1 from the browser
(the JavaScript SDK, or fetch) with its key in a header.

Keys travel only in headers, never in cookies, so a page on another origin gains nothing it did not already
hold: responses carry ``Access-Control-Allow-Origin`` but never ``Allow-Credentials``, and the web pages
(signed in by cookie) get no CORS headers at all."""

from __future__ import annotations

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_API_PATHS = ("/api/", "/v1/")
_HEADERS = [
    "authorization",
    "content-type",
    "idempotency-key",
    "x-api-key",
    "x-renter-key",
    "x-provider-key",
    "x-admin-token",
    "x-request-id",
]
# What a browser app may read of an answer: the request id to quote, and when to retry.
_EXPOSED = ["x-request-id", "retry-after"]


class ApiCors:
    def __init__(self, app: ASGIApp, *, origins: list[str]) -> None:
        self.app = app
        self.cors = CORSMiddleware(
            app,
            allow_origins=origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=_HEADERS,
            expose_headers=_EXPOSED,
            allow_credentials=False,
            max_age=600,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(_API_PATHS):
            await self.app(scope, receive, send)
        elif any(name == b"origin" for name, _ in scope["headers"]):
            await self.cors(scope, receive, send)
        else:  # no Origin, no CORS headers: only the Vary CORSMiddleware adds, without rebuilding headers
            await self.app(scope, receive, _varying_by_origin(send))


def _varying_by_origin(send: Send) -> Send:
    """Daemons and SDKs send no Origin; a cache must still not hand their answer to a browser's call."""

    async def send_varying(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", []), (b"vary", b"Origin")]
        await send(message)

    return send_varying
