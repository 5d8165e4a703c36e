"""The Python SDK where no real server fails on cue: a proxy's error page, broken streams, a missing extra."""

from __future__ import annotations

import sys

import dc1
import httpx
import pytest

VLLM_JOB = {"job_id": "job-1", "status": "running", "job_type": "vllm_serve", "cost_halala": 15}
SERVING = {"job_id": "job-1", "status": "running", "result": {"endpoint_url": "http://gpu.test/v1"}}


def _client(answer, api_key: str | None = "dc1-renter-x") -> dc1.Client:
    return dc1.Client(api_key=api_key, base_url="http://dcp.test", transport=httpx.MockTransport(answer))


class _BrokenStream(httpx.SyncByteStream):
    """A response body whose connection drops before the first line."""

    def __iter__(self):
        raise httpx.ReadTimeout("the connection went quiet")


def _serving(request: httpx.Request) -> httpx.Response:
    if request.url.path.endswith("/output"):
        return httpx.Response(200, json=SERVING)
    return httpx.Response(200, json={"job": VLLM_JOB})


def test_a_proxys_html_error_page_becomes_the_message():
    page = "<html><body>502 Bad Gateway</body></html>"
    with _client(lambda request: httpx.Response(502, text=page)) as client:
        client.max_retries = 0
        with pytest.raises(dc1.ProviderUnavailableError) as failed:
            client.balance()
    assert failed.value.status == 502 and "Bad Gateway" in failed.value.message
    assert failed.value.body == {"error": page}


def test_a_broken_stream_is_a_lost_connection_or_past_the_deadline_a_timeout():
    with _client(lambda request: httpx.Response(200, stream=_BrokenStream())) as client:
        with pytest.raises(dc1.APIConnectionError, match="unreachable"):
            list(client.jobs.stream("job-1", timeout=60))
        with pytest.raises(dc1.TimeoutError):
            list(client.jobs.stream("job-1", timeout=0))


def test_a_sync_stream_cut_before_done_is_a_lost_connection():
    cut_short = "event: status\ndata: {}\n\n"  # a status event, then the connection closes: no ``done``
    with _client(lambda request: httpx.Response(200, text=cut_short)) as client:
        events = client.jobs.stream("job-1")
        assert next(events).type == "status"
        with pytest.raises(dc1.APIConnectionError, match="closed before"):
            next(events)


def test_an_unreachable_server_is_a_connection_error_for_calls_and_streams():
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with _client(refuse) as client:
        client.max_retries = 0
        with pytest.raises(dc1.APIConnectionError, match=r"DCP at http://dcp\.test is unreachable"):
            client.balance()
        with pytest.raises(dc1.APIConnectionError, match=r"dcp\.test"):
            next(client.jobs.stream("job-1"))


def test_the_openai_helper_names_the_extra_when_openai_is_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "openai", None)  # what ``import openai`` meets without the package
    with _client(_serving) as client, pytest.raises(ImportError, match=r"dc1-sdk\[openai\]"):
        client.jobs.openai_client("job-1", timeout=5)


def test_the_openai_helper_needs_the_renter_key():
    with _client(_serving, api_key=None) as client, pytest.raises(ValueError, match="renter key"):
        client.jobs.openai_client("job-1", timeout=5)


def test_a_malformed_image_is_a_value_error():
    output = dc1.Output("job-1", "completed", True, {"image_base64": "not base64!"}, None, 0)
    with pytest.raises(ValueError, match="malformed image"):
        output.image_bytes  # noqa: B018 - the property raises


def _failing_first(failure):
    """A server that fails the first request with ``failure`` (an exception to raise, or a status), then
    answers 200; the requests it saw."""
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if len(seen) > 1:
            return httpx.Response(200, json={})
        if isinstance(failure, int):
            return httpx.Response(failure, json={"error": "failed"}, headers={"retry-after": "0"})
        raise failure(request)

    return answer, seen


@pytest.mark.parametrize(
    ("failure", "made_again"),
    [
        (lambda request: httpx.ReadTimeout("the answer was lost", request=request), False),
        (502, False),
        (lambda request: httpx.ConnectError("refused", request=request), True),  # never sent
        (429, True),  # refused before anything was done
    ],
)
def test_a_change_is_asked_again_only_when_it_certainly_was_not_made(monkeypatch, failure, made_again):
    monkeypatch.setattr("dc1._client.time.sleep", lambda seconds: None)
    answer, seen = _failing_first(failure)
    with _client(answer) as client:
        if made_again:
            assert client.request("POST", "/api/providers/withdraw", json={"amount_halala": 5000})
        else:  # a retry would have answered 409 "already in progress" for a withdrawal that was made
            with pytest.raises((dc1.APIConnectionError, dc1.ProviderUnavailableError)):
                client.request("POST", "/api/providers/withdraw", json={"amount_halala": 5000})
    assert len(seen) == (2 if made_again else 1)


@pytest.mark.parametrize("headers", [None, {"idempotency-key": "k-1"}])
def test_reads_and_changes_under_an_idempotency_key_are_asked_again(monkeypatch, headers):
    monkeypatch.setattr("dc1._client.time.sleep", lambda seconds: None)
    answer, seen = _failing_first(lambda request: httpx.ReadTimeout("the answer was lost", request=request))
    method = "GET" if headers is None else "POST"
    with _client(answer) as client:
        assert client.request(method, "/api/jobs/submit", headers=headers).status_code == 200
    assert len(seen) == 2


def test_every_page_of_providers_is_listed_by_its_cursor():
    def provider(number: int) -> dict:
        return {
            "id": number,
            "name": f"node {number}",
            "gpu_model": "RTX 4090",
            "vram_gb": 24,
            "is_live": True,
            "status": "online",
            "price_per_minute_halala": {"llm_inference": 15},
        }

    pages = {None: ([1, 2], 2), "2": ([3], None)}  # a page per cursor, and the next cursor

    def listing(request: httpx.Request) -> httpx.Response:
        numbers, after = pages[request.url.params.get("after")]
        return httpx.Response(200, json={"providers": [provider(n) for n in numbers], "next_after": after})

    with _client(listing) as client:
        assert [p.id for p in client.providers.list()] == [1, 2, 3]
