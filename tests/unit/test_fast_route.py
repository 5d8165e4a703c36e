"""kit/fast_route.include_flat: a router's routes added to the app itself are described and answered exactly
as ``app.include_router`` would have them, fast endpoints and WebSocket routes included."""

from __future__ import annotations

from typing import Annotated

import httpx
from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Request, WebSocket
from pydantic import BaseModel, Field
from starlette.responses import JSONResponse, Response
from starlette.testclient import TestClient

from dcp.kit.fast_route import FastRoute, fast, include_flat


class Thing(BaseModel):
    name: str = Field(min_length=1)
    size: int = 1


async def caller_of(request: Request) -> str:
    caller = request.headers.get("x-who")
    if caller is None:
        raise HTTPException(401, "Who are you?")
    return caller


def _router() -> APIRouter:
    router = APIRouter(prefix="/things", tags=["things"], route_class=FastRoute)

    @router.post(
        "/make", status_code=201, responses={402: {"description": "Pay first"}}, summary="Make a thing"
    )
    @fast(caller_of)
    async def make(
        body: Thing,
        caller: Annotated[str, Depends(caller_of)],
        request: Request,
        x_note: Annotated[str | None, Header(max_length=5)] = None,
    ) -> Response:
        return JSONResponse({"made": body.name, "by": caller, "note": x_note}, status_code=201)

    @router.get("/count", summary="How many")
    async def count() -> dict[str, int]:
        return {"count": 3}

    @router.websocket("/watch")
    async def watch(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(f"watching {websocket.url.path}")
        await websocket.close()

    return router


def _apps() -> tuple[FastAPI, FastAPI]:
    included, flat = FastAPI(), FastAPI()
    included.include_router(_router(), prefix="/api")
    include_flat(flat, _router(), prefix="/api")
    return included, flat


def test_described_as_if_included():
    included, flat = _apps()
    assert flat.openapi() == included.openapi()
    assert [type(route) for route in flat.router.routes[-3:-1]] == [FastRoute, FastRoute]


def test_websocket_routes_too():
    for app in _apps():
        with TestClient(app).websocket_connect("/api/things/watch") as websocket:
            assert websocket.receive_text() == "watching /api/things/watch"


async def test_answered_as_if_included():
    requests = [
        ("POST", "/api/things/make", {"x-who": "sara"}, b'{"name": "cup", "size": 2}'),
        ("POST", "/api/things/make", {"x-who": "sara", "x-note": "hello"}, b'{"name": "cup"}'),
        ("POST", "/api/things/make", {"x-who": "sara", "x-note": "too long"}, b'{"name": "cup"}'),
        ("POST", "/api/things/make", {}, b'{"name": "cup"}'),
        ("POST", "/api/things/make", {"x-who": "sara"}, b'{"name": ""}'),
        ("POST", "/api/things/make", {"x-who": "sara"}, b"{not json"),
        ("POST", "/api/things/make", {"x-who": "sara"}, b""),
        ("GET", "/api/things/make", {"x-who": "sara"}, b""),
        ("GET", "/api/things/count", {}, b""),
        ("POST", "/api/things/count", {}, b""),
    ]
    answers = []
    for app in _apps():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            answers.append(
                [
                    await client.request(
                        method, path, content=body, headers={**headers, "content-type": "application/json"}
                    )
                    for method, path, headers, body in requests
                ]
            )
    included, flat = answers
    assert [(a.status_code, a.json(), a.headers.get("allow")) for a in flat] == [
        (a.status_code, a.json(), a.headers.get("allow")) for a in included
    ]
    assert [a.status_code for a in flat] == [201, 201, 422, 401, 422, 422, 422, 405, 200, 405]
