"""The route class of the hottest endpoints (/v1's completions, the heartbeat): FastAPI's request handler in
fewer steps.

FastAPI solves a route's dependencies generically (each one a few dozen microseconds: a key alone brings
four). On the gateway's hot path that was a tenth of the added latency, and a third of a heartbeat's own
work, so these routes authenticate by calling the endpoint's auth function and validate the body with the
route's own body field directly. What a client sees is unchanged: the same key rules and errors, the body's
JSON errors before the key's (as FastAPI reads the body first), its validation errors after, the same
messages; the OpenAPI description still comes from the endpoint's signature (and ``response_model``)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from fastapi import APIRouter, FastAPI
from fastapi.dependencies.utils import request_params_to_args
from fastapi.exceptions import HTTPException, RequestValidationError
from fastapi.routing import APIRoute, APIWebSocketRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

_MISSING = object()
Endpoint = TypeVar("Endpoint", bound=Callable[..., Awaitable[Any]])
# Who is calling, from the request alone; raises the endpoint's key errors.
Auth = Callable[[Request], Awaitable[Any]]


def fast(auth: Auth) -> Callable[[Endpoint], Endpoint]:
    """Serve this endpoint through ``FastRoute``, authenticated by ``auth``. The endpoint takes exactly the
    body, what ``auth`` returned and the request, in that order, then its header parameters by name, and
    returns a Response; its signature still declares them (with the dependency ``auth`` stands for) for the
    OpenAPI description."""

    def mark(endpoint: Endpoint) -> Endpoint:
        endpoint.dcp_fast_auth = auth  # type: ignore[attr-defined]
        return endpoint

    return mark


class FastRoute(APIRoute):
    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        self._serve: ASGIApp | None = None
        self._methods = frozenset(self.methods or ())
        if getattr(endpoint, "dcp_fast_auth", None) is not None and self.body_field is not None:
            self._serve = _served_by(self.get_route_handler())

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A fast endpoint's request goes straight to its handler: FastAPI's wrapper around it (two exit
        stacks for dependencies with ``yield``, which these have none of, and the exception handlers the
        app's ExceptionMiddleware applies just the same) is left out."""
        if self._serve is not None and scope["method"] in self._methods:
            await self._serve(scope, receive, send)
        else:
            await super().handle(scope, receive, send)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        endpoint, body_field, header_fields = self.endpoint, self.body_field, self.dependant.header_params
        auth: Auth | None = getattr(endpoint, "dcp_fast_auth", None)
        if auth is None or body_field is None:
            return super().get_route_handler()

        async def handle(request: Request) -> Response:
            body = await _json_body(request)
            caller = await auth(request)
            if body is _MISSING:
                missing = {"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}
                raise RequestValidationError([missing])
            headers, errors = request_params_to_args(header_fields, request.headers)
            value, body_errors = body_field.validate(body, {}, loc=("body",))
            if errors or body_errors:
                raise RequestValidationError([*errors, *body_errors], body=body)
            answer = await endpoint(value, caller, request, **headers)
            if not isinstance(answer, Response):
                raise TypeError(f"{self.path}: a fast endpoint returns a Response")
            return answer

        return handle


def _served_by(handler: Callable[[Request], Awaitable[Response]]) -> ASGIApp:
    async def serve(scope: Scope, receive: Receive, send: Send) -> None:
        response = await handler(Request(scope, receive, send))
        await response(scope, receive, send)

    return serve


def include_flat(
    app: FastAPI, router: APIRouter, *, prefix: str = "", include_in_schema: bool = True
) -> None:
    """Add ``router``'s routes to the app itself, as ``app.include_router`` would describe them. FastAPI 0.165
    reaches an included router's route through two more layers (its inclusion and the route's effective
    context), each matching the path again: 12 µs of the 40 a trivial fast endpoint costs in-process, and
    half of what an /api request spent finding its route among the included routers."""
    for route in router.routes:
        if isinstance(route, APIWebSocketRoute):
            app.router.add_api_websocket_route(
                prefix + route.path, route.endpoint, name=route.name, dependencies=route.dependencies
            )
            continue
        if not isinstance(route, APIRoute):
            raise TypeError(f"{route!r}: only API and WebSocket routes are added flat")
        app.router.add_api_route(
            prefix + route.path,
            route.endpoint,
            route_class_override=type(route),
            methods=route.methods,
            response_model=route.response_model,
            status_code=route.status_code,
            tags=route.tags,
            dependencies=route.dependencies,
            summary=route.summary,
            description=route.description,
            response_description=route.response_description,
            responses=route.responses,
            deprecated=route.deprecated,
            operation_id=route.operation_id,
            include_in_schema=include_in_schema and route.include_in_schema,
            response_class=route.response_class,
            name=route.name,
            openapi_extra=route.openapi_extra,
        )


async def _json_body(request: Request) -> Any:
    """The body as FastAPI reads it: JSON when declared so (a decoding error is raised at once), the raw
    bytes for another content type, ``_MISSING`` when there is none."""
    raw = await request.body()
    if not raw:
        return _MISSING
    content_type = request.headers.get("content-type", "")
    main, _, subtype = content_type.partition(";")[0].strip().lower().partition("/")
    if main != "application" or not (subtype == "json" or subtype.endswith("+json")):
        return raw
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        error = {"type": "json_invalid", "loc": ("body", exc.pos), "msg": "JSON decode error", "input": {}}
        raise RequestValidationError([{**error, "ctx": {"error": exc.msg}}], body=exc.doc) from exc
    except (ValueError, RecursionError) as exc:  # not text at all, or nested past the parser's depth
        raise HTTPException(status_code=400, detail="There was an error parsing the body") from exc
