"""HTTP plumbing: request ids, the body size limit, text no database stores, and every error as JSON."""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import sqlite3
from contextvars import ContextVar
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dcp.kit.audit import actor_var, client_ip_var
from dcp.kit.errors import AppError, v1_envelope
from dcp.kit.storable import unstorable

log = logging.getLogger("dcp.http")
request_id_var: ContextVar[str] = ContextVar("request_id", default="-")
_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestContext:
    """Gives every request an id (kept from a sane ``x-request-id``), caps the body's size and time, and
    refuses text no database stores (``kit.storable``)."""

    def __init__(
        self, app: ASGIApp, *, max_body_bytes: int, max_header_bytes: int, body_timeout_seconds: float
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_header_bytes = max_header_bytes
        self.body_timeout_seconds = body_timeout_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        incoming = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _SAFE_ID.match(incoming) else secrets.token_hex(16)  # uuid4 took 4x longer
        request_id_var.set(request_id)
        client_ip_var.set(scope["client"][0] if scope.get("client") else "-")
        actor_var.set("anonymous")  # authentication names the caller once it knows who it is
        if sum(len(name) + len(value) for name, value in scope["headers"]) > self.max_header_bytes:
            message = f"Request headers too large (limit {self.max_header_bytes} bytes)"
            await self._reject(scope, receive, send, 431, message, request_id)
            return
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body_bytes):
            status = 413 if declared.isdigit() else 400
            message = self._too_large() if status == 413 else "Invalid Content-Length"
            await self._reject(scope, receive, send, status, message, request_id)
            return
        # The body is read here, within the size limit (chunked bodies declare none) and the time limit (a
        # client trickling its body must not hold a worker), then replayed to the app.
        try:
            async with asyncio.timeout(self.body_timeout_seconds):
                body = await self._read_limited(receive)
        except TimeoutError:
            message = f"Request body not received within {self.body_timeout_seconds:g} s"
            await self._reject(scope, receive, send, 408, message, request_id)
            return
        if body is None:
            await self._reject(scope, receive, send, 413, self._too_large(), request_id)
            return
        if "\x00" in scope["path"]:  # no name holds one; PostgreSQL would refuse it in a lookup
            await self._reject(scope, receive, send, 404, "Not found", request_id)
            return
        problem = unstorable(body, headers.get(b"content-type", b""))
        if problem is not None:
            await self._reject(scope, receive, send, 400, f"Invalid request: {problem}", request_id)
            return
        receive = _replay(body, receive)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        await self.app(scope, receive, send_with_id)

    async def _read_limited(self, receive: Receive) -> bytes | None:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return b"".join(chunks)
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    @staticmethod
    async def _reject(
        scope: Scope, receive: Receive, send: Send, status: int, message: str, request_id: str
    ) -> None:
        content = v1_envelope(status, message) if _is_v1(scope["path"]) else {"error": message}
        response = JSONResponse(content, status, headers={"x-request-id": request_id})
        await response(scope, receive, send)

    def _too_large(self) -> str:
        return f"Request body too large (limit {self.max_body_bytes} bytes)"


def _replay(body: bytes, receive: Receive) -> Receive:
    """Hand the buffered body over once, then pass through (a later receive waits for the disconnect,
    which streaming responses listen for)."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replayed


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, app_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, http_error)  # type: ignore[arg-type]
    for failure in (DBAPIError, PoolTimeout, ConnectionError):
        app.add_exception_handler(failure, _database_error)
    app.add_exception_handler(Exception, _unexpected)


def _is_v1(path: str) -> bool:
    return path == "/v1" or path.startswith("/v1/")


async def app_error(request: Request, exc: AppError) -> JSONResponse:
    if exc.status == 500:  # a broken rule inside DCP: its message is for the log, not the client
        return await _unexpected(request, exc)
    if exc.status > 500:
        log.warning("request %s: %s", request_id_var.get(), exc.message)
    headers = (
        {"retry-after": str(exc.extra["retry_after_seconds"])} if "retry_after_seconds" in exc.extra else None
    )
    if _is_v1(request.url.path):
        body = v1_envelope(
            exc.status,
            exc.message,
            code=exc.code,
            kind=exc.kind,
            retryable=exc.retryable or None,
            **exc.extra,
        )
        if exc.status == 429:  # the seed repeats the retry hints beside the error
            body.update(
                {key: exc.extra[key] for key in ("retry_after_seconds", "retry_after_ms") if key in exc.extra}
            )
        return JSONResponse(body, exc.status, headers=headers)
    named = {"code": exc.code} if exc.code else {}  # for the errors a client may act on
    return JSONResponse({"error": exc.message, **named, **exc.extra}, exc.status, headers=headers)


async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    message = {404: "Not found", 405: "Method not allowed"}.get(exc.status_code, str(exc.detail))
    headers = {name.lower(): value for name, value in (exc.headers or {}).items()}
    if exc.status_code == 405:
        headers["allow"] = ", ".join(_allowed_methods(request))
    if _is_v1(request.url.path):
        return JSONResponse(v1_envelope(exc.status_code, message), exc.status_code, headers=headers)
    return JSONResponse({"error": message}, exc.status_code, headers=headers)


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path (Starlette names only the first route that matched)."""
    allowed = []
    for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"):
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] is Match.FULL for route in request.app.router.routes):
            allowed.append(method)
    return allowed


_STORAGE_FULL = "Storage is full: nothing was changed, and nothing can be saved until an operator frees space"
_DATABASE_DOWN = "The database is unavailable: nothing was changed; try again shortly"
_SQLITE_TRANSIENT = ("database is locked", "disk I/O error", "unable to open database file")


def database_outage(exc: BaseException) -> tuple[int, str] | None:
    """The status and message when ``exc`` means the database is full or out of reach; None otherwise
    (other database errors are bugs, answered 500)."""
    if isinstance(exc, DBAPIError) and "database or disk is full" in str(exc.orig):
        return 507, _STORAGE_FULL
    if isinstance(exc, DBAPIError) and isinstance(exc.orig, sqlite3.Error):
        transient = any(words in str(exc.orig) for words in _SQLITE_TRANSIENT)
        return (503, _DATABASE_DOWN) if transient else None
    if isinstance(exc, OperationalError | InterfaceError | PoolTimeout | ConnectionError):
        return 503, _DATABASE_DOWN
    if isinstance(exc, DBAPIError) and (exc.connection_invalidated or _server_unavailable(exc.orig)):
        return 503, _DATABASE_DOWN
    return None


def _server_unavailable(error: object) -> bool:
    # PostgreSQL's SQLSTATE class 08 (connection exception), 57P01-03 (shutting down, crashed, starting
    # up) and 53300 (too many connections).
    state = str(getattr(error, "sqlstate", None) or "")
    return state.startswith("08") or state in ("57P01", "57P02", "57P03", "53300")


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    if outage := _outage(request, exc):
        return outage
    raise exc  # any other database error is a bug: on to the outermost handler, _unexpected


def _outage(request: Request, exc: Exception, *, add_id: bool = False) -> JSONResponse | None:
    """The answer when the database is out of reach or full: 503 or 507 with the request id."""
    found = database_outage(exc)
    if found is None:
        return None
    status, message = found
    request_id = request_id_var.get()
    # No traceback: the cause is outside DCP, and one line per request is enough to see an outage.
    log.error("request %s: %s (%s: %s)", request_id, message, type(exc).__name__, str(exc).partition("\n")[0])
    headers = {"retry-after": "2", **({"x-request-id": request_id} if add_id else {})}
    if _is_v1(request.url.path):
        code = "storage_full" if status == 507 else "database_unavailable"
        body = v1_envelope(status, message, code=code, retryable=True, request_id=request_id)
        return JSONResponse(body, status, headers=headers)
    return JSONResponse({"error": message, "request_id": request_id}, status, headers=headers)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    if outage := _outage(request, exc, add_id=True):  # a database call in a middleware failed
        return outage
    request_id = request_id_var.get()
    log.error("unhandled error in request %s", request_id, exc_info=exc)
    # This answer comes from Starlette's outermost middleware, past RequestContext: add the id here.
    body = (
        v1_envelope(500, "internal error", request_id=request_id)
        if _is_v1(request.url.path)
        else {"error": "internal error", "request_id": request_id}
    )
    return JSONResponse(body, 500, headers={"x-request-id": request_id})


async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    message = validation_message(exc.errors())
    if _is_v1(request.url.path):
        return JSONResponse(v1_envelope(400, message), 400)
    return JSONResponse({"error": message}, 400)


def validation_message(errors: Any) -> str:
    """One readable sentence for pydantic's error list, naming fields the way the seed does."""
    missing = [_field(e["loc"]) for e in errors if e.get("type") == "missing"]
    if missing == [""]:
        return "Missing request body: JSON expected"
    if missing:
        return "Missing required fields: " + ", ".join(dict.fromkeys(name for name in missing if name))
    first = errors[0]
    if first.get("type") == "json_invalid":
        return "Invalid JSON body"
    message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    field = _field(first["loc"])
    return f"Invalid {field}: {message}" if field else f"Invalid request body: {message}"


def _field(loc: Any) -> str:
    """The field's dotted name: not where it came from, nor the member of a union pydantic tried
    (``constrained-str``, ``list[...]``, ``TextPart``)."""
    parts = [str(part) for part in loc if part not in ("body", "query", "path", "header")]
    return ".".join(part for part in parts if not _UNION_MEMBER.search(part))


_UNION_MEMBER = re.compile(r"^constrained-|\[|^[A-Z]")
