"""The /v1 endpoints: models, chat completions and completions, for any OpenAI client."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from dcp.auth import CurrentRenter, RenterKey, renter_of
from dcp.billing import token_prices
from dcp.db.session import SessionDep
from dcp.deps import NowDep, SettingsDep
from dcp.gateway import pool, service, streaming
from dcp.gateway.billing import REQUEST_PREFIX
from dcp.gateway.errors import ModelNotFound
from dcp.gateway.schemas import ChatRequest, CompletionRequest
from dcp.kit.errors import v1_envelope, v1_error_responses
from dcp.kit.fast_route import FastRoute, fast
from dcp.kit.http import request_id_var

router = APIRouter(prefix="/v1", tags=["openai"], route_class=FastRoute)
_ERRORS = v1_error_responses(400, 401, 402, 403, 404, 429, 502)


def gateway_of(request: Request) -> service.Gateway:
    gateway: service.Gateway = request.app.state.gateway
    return gateway


@router.get(
    "/models", responses=v1_error_responses(401, 403), summary="Models that online providers serve now"
)
async def list_models(
    renter: CurrentRenter, session: SessionDep, settings: SettingsDep, now: NowDep
) -> dict[str, Any]:
    return {"object": "list", "data": await _models(session, settings, now)}


@router.get(
    "/models/{model:path}",
    responses=v1_error_responses(401, 403, 404),
    summary="One model that online providers serve now",
)
async def retrieve_model(
    model: str, renter: CurrentRenter, session: SessionDep, settings: SettingsDep, now: NowDep
) -> dict[str, Any]:
    found = [entry for entry in await _models(session, settings, now) if entry["id"] == model]
    if not found:
        raise ModelNotFound(f"The model '{model}' is not served by any online provider now")
    return found[0]


async def _models(session: SessionDep, settings: SettingsDep, now: NowDep) -> list[dict[str, Any]]:
    by_model = pool.models_of(await pool.serving(session, settings=settings, now=now))
    data = []
    for model, providers in sorted(by_model.items()):
        price = await token_prices.price_for(session, model, settings.pricing)
        data.append(
            {
                "id": model,
                "object": "model",
                "created": 0,
                "owned_by": "dcp",
                "context_length": max(p.serving_context for p in providers),
                "providers": len(providers),
                "pricing": {
                    "input_per_million_halala": price.input_per_million,
                    "output_per_million_halala": price.output_per_million,
                },
            }
        )
    return data


@router.post("/chat/completions", responses=_ERRORS, summary="OpenAI chat completions (streaming or not)")
@fast(renter_of)
async def chat_completions(body: ChatRequest, renter: RenterKey, request: Request) -> Any:
    return await _complete(body, "chat/completions", renter.id, request, "chat.completion.chunk")


@router.post("/completions", responses=_ERRORS, summary="OpenAI text completions (streaming or not)")
@fast(renter_of)
async def completions(body: CompletionRequest, renter: RenterKey, request: Request) -> Any:
    return await _complete(body, "completions", renter.id, request, "text_completion")


async def _complete(
    body: ChatRequest | CompletionRequest,
    endpoint: str,
    renter_id: int,
    request: Request,
    chunk_object: str,
) -> Response:
    """No database round trip on the way in or out while caches are warm: the key, the pool and the price
    come from this process's caches (a miss reads them outside any write transaction), the worst case from
    the renter's allowance, and the settlement is written after the response."""
    gateway = gateway_of(request)
    now = gateway.clock.now()
    request_id = f"{REQUEST_PREFIX}{request_id_var.get()}-{time.monotonic_ns():x}"
    admitted = await service.admit(
        gateway, renter_id=renter_id, body=body, endpoint=endpoint, request_id=request_id, now=now
    )
    await service.reserve(gateway, admitted)
    upstream_body = body.upstream(max_tokens=admitted.max_tokens)
    try:
        upstream = await service.connect(gateway, admitted, path=f"v1/{endpoint}", body=upstream_body)
    except Exception as exc:
        service.finish(
            gateway, admitted, provider_id=None, usage=None, error=str(exc), attempts=admitted.attempts
        )
        raise
    headers = {"x-dcp-provider-attempts": str(upstream.attempts)}
    if upstream.status == 200 and upstream.media_type.startswith("text/event-stream"):
        if not body.stream:
            chat = endpoint == "chat/completions"
            return await streaming.whole_answer(gateway, admitted, upstream, chat=chat, headers=headers)
        wants_usage = bool(body.stream_options and body.stream_options.include_usage)
        stream = streaming.relay_stream(
            gateway, admitted, upstream, client_wants_usage=wants_usage, chunk_object=chunk_object
        )
        return StreamingResponse(stream, media_type="text/event-stream", headers=headers)
    # A refusal, or an engine that answered whole although asked to stream.
    text = upstream.first + "".join([piece async for piece in upstream.rest])
    answer = service.json_object(text) or {}
    ok = upstream.status == 200 and "choices" in answer
    broken = upstream.status == 200 and not ok  # a 200 whose completion broke off (the link dropped)
    gateway.router.release(upstream.provider_id, ok=ok or (upstream.status < 500 and not broken))
    service.finish(
        gateway,
        admitted,
        provider_id=upstream.provider_id,
        usage=answer.get("usage") if ok else None,
        error=None if ok else f"upstream answered {upstream.status}",
        attempts=upstream.attempts,
    )
    if broken:
        message = "The provider's answer broke off before it was complete; retry"
        return JSONResponse(v1_envelope(502, message), status_code=502)
    if not ok:
        return JSONResponse(v1_envelope(400, _refusal(answer)), status_code=400)
    # The provider's own bytes: parsed above for its usage, not serialised again.
    return Response(text, media_type="application/json", headers=headers)


def _refusal(answer: dict[str, Any]) -> str:
    """Why the provider refused, as engines say it: ``{"error": {"message": …}}`` (vLLM, llama.cpp),
    ``{"error": "…"}`` (TGI), or ``{"message": …}``."""
    error = answer.get("error")
    message = error.get("message") if isinstance(error, dict) else error
    return str(message or answer.get("message") or "the provider refused the request")[:500]
