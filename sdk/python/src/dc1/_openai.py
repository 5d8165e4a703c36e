"""OpenAI clients for a vllm_serve job's endpoint; ``openai`` is an optional extra, imported only here."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import openai


def _openai() -> Any:
    try:
        import openai
    except ImportError:
        message = "The OpenAI helpers need the openai package: pip install 'dc1-sdk[openai]'"
        raise ImportError(message) from None
    return openai


def _api_key(api_key: str | None) -> str:
    if not api_key:
        raise ValueError("A vllm_serve endpoint takes the renter key as its API key; this client has none")
    return api_key


def sync_client(endpoint_url: str, api_key: str | None, **options: Any) -> openai.OpenAI:
    client: openai.OpenAI = _openai().OpenAI(base_url=endpoint_url, api_key=_api_key(api_key), **options)
    return client


def async_client(endpoint_url: str, api_key: str | None, **options: Any) -> openai.AsyncOpenAI:
    client: openai.AsyncOpenAI = _openai().AsyncOpenAI(
        base_url=endpoint_url, api_key=_api_key(api_key), **options
    )
    return client
