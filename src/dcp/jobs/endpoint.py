"""A running vllm_serve job's OpenAI-compatible endpoint, on the DCP server: requests are relayed to the
provider's engine through its daemon's link, so the renter never needs (or learns) the provider's address.

The endpoint's URL holds an access token of its own (an HMAC of the job id under the server secret): the URL
is the credential, so an OpenAI client needs no API key (the seed's ``api_key="not-needed"``). The server
names the URL itself: a provider cannot point a renter, and the key their client sends, anywhere else."""

from __future__ import annotations

import hashlib
import hmac

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from dcp.config import Settings
from dcp.db.session import SessionDep, end_transaction
from dcp.jobs import repository
from dcp.jobs.errors import JobNotFound
from dcp.jobs.link import LinkRegistry
from dcp.jobs.relay import RelayError
from dcp.kit.errors import AppError, Conflict, NotFound, error_responses
from dcp.models import Provider

router = APIRouter(prefix="/jobs", tags=["jobs"])
_MAX_BODY_CHARS = 1024 * 1024
_TOKEN_HEX = 32  # 128 bits


def endpoint_url(settings: Settings, job_id: str) -> str:
    """The public URL of a vllm_serve job's endpoint, its access token included."""
    return f"{settings.public_url.rstrip('/')}/api/jobs/{job_id}/endpoint/{access_token(settings, job_id)}/v1"


def access_token(settings: Settings, job_id: str) -> str:
    mac = hmac.new(settings.secret_bytes, b"vllm-endpoint:" + job_id.encode(), hashlib.sha256)
    return mac.hexdigest()[:_TOKEN_HEX]


class ProviderUnreachable(AppError):
    status = 502


_ERRORS = error_responses(400, 404, 409, 502)


@router.post(
    "/{job_id}/endpoint/{token}/{path:path}",
    summary="POST to a vllm_serve job's OpenAI-compatible endpoint (e.g. v1/chat/completions), at the "
    "`endpoint_url` its output gives: that URL is the credential, no API key is needed",
    responses=_ERRORS,
    response_class=StreamingResponse,
)
async def endpoint_post(
    job_id: str, token: str, path: str, request: Request, session: SessionDep
) -> StreamingResponse:
    return await _relay(job_id, token, path, request, session)


@router.get(
    "/{job_id}/endpoint/{token}/{path:path}",
    summary="GET from a vllm_serve job's endpoint (e.g. v1/models)",
    responses=_ERRORS,
    response_class=StreamingResponse,
)
async def endpoint_get(
    job_id: str, token: str, path: str, request: Request, session: SessionDep
) -> StreamingResponse:
    return await _relay(job_id, token, path, request, session)


async def _relay(
    job_id: str, token: str, path: str, request: Request, session: SessionDep
) -> StreamingResponse:
    settings: Settings = request.app.state.settings
    if not hmac.compare_digest(token.encode(), access_token(settings, job_id).encode()):
        raise JobNotFound()  # as for a job that does not exist: the URL is the credential
    job = await repository.by_job_id(session, job_id[:40])
    if job is None or job.job_type != "vllm_serve":
        raise JobNotFound()
    if not path.startswith("v1/"):
        raise NotFound("Only the OpenAI-compatible /v1 paths are served here")
    if job.status != "running" or not (job.result or {}).get("endpoint_url"):
        raise Conflict(f"The endpoint is not serving (the job is {job.status})")
    provider = await session.get(Provider, job.provider_id) if job.provider_id is not None else None
    await end_transaction(session)  # nothing is held while the provider answers
    links: LinkRegistry = request.app.state.links
    link = links.reach(provider.id, provider.link_replica) if provider is not None else None
    if link is None:
        raise ProviderUnreachable("The provider serving this endpoint is not connected right now")
    body = (await request.body()).decode(errors="replace")[:_MAX_BODY_CHARS]
    try:
        status, media_type, chunks = await link.relay(
            job_id=job.job_id,
            method=request.method,
            path=path,
            body=body,
            content_type=request.headers.get("content-type", "application/json"),
        )
    except RelayError as exc:
        raise ProviderUnreachable(f"The provider could not answer: {exc}") from exc
    kind = media_type.split(";")[0].strip().lower()
    served = media_type if kind in _SERVED_TYPES else "application/octet-stream"
    return StreamingResponse(chunks, status_code=status, media_type=served, headers=_UNTRUSTED)


# An OpenAI-compatible engine answers JSON, event streams or plain text; anything else is passed on as bytes.
_SERVED_TYPES = frozenset({"application/json", "text/event-stream", "text/plain"})
# The answer is the provider's, served from DCP's origin: nothing in it may run there, or be read as a page.
_UNTRUSTED = {"content-security-policy": "sandbox; default-src 'none'", "x-content-type-options": "nosniff"}
