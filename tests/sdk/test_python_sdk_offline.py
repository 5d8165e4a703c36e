"""The Python SDK where no real server fails on cue: a proxy's error page, broken streams, a missing extra."""

from __future__ import annotations

import email.utils
import sys
import time
from datetime import UTC, datetime, timedelta

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


def test_a_broken_stream_is_a_lost_connection_or_past_the_deadline_a_timeout(monkeypatch):
    monkeypatch.setattr("dc1._streaming._REOPEN_GIVE_UP_SECONDS", 0.0)
    with _client(lambda request: httpx.Response(200, stream=_BrokenStream())) as client:
        with pytest.raises(dc1.APIConnectionError, match=r"did not answer .* may have reached it"):
            list(client.jobs.stream("job-1", timeout=60))
        with pytest.raises(dc1.TimeoutError):
            list(client.jobs.stream("job-1", timeout=0))


def test_a_sync_stream_that_keeps_closing_after_its_snapshot_is_a_lost_connection(monkeypatch):
    monkeypatch.setattr("dc1._streaming._REOPEN_GIVE_UP_SECONDS", 0.0)
    cut_short = "event: status\ndata: {}\n\n"  # a status event, then the connection closes: no ``done``
    with _client(lambda request: httpx.Response(200, text=cut_short)) as client:
        events = client.jobs.stream("job-1")
        assert next(events).type == "status"
        with pytest.raises(dc1.APIConnectionError, match="closed before"):
            list(events)  # opened again once, then given up


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


def test_a_sync_stream_is_opened_again_after_a_restart(monkeypatch):
    monkeypatch.setattr("dc1._client.time.sleep", lambda seconds: None)
    held = 'event: status\ndata: {"status": "running"}\n\n: keep-alive\n\n'
    done = 'event: status\ndata: {"status": "running"}\n\nevent: done\ndata: {"status": "completed"}\n\n'
    answers = iter(
        [httpx.Response(200, text=held), httpx.Response(502, json={}), httpx.Response(200, text=done)]
    )
    with _client(lambda request: next(answers)) as client:
        assert [event.type for event in client.jobs.stream("job-1")] == ["status", "status", "done"]


def test_a_sync_stream_near_its_deadline_is_opened_again_to_end_on_time():
    class Slow(httpx.SyncByteStream):
        def __iter__(self):
            yield b"event: status\ndata: {}\n\n"
            time.sleep(0.7)
            yield b": keep-alive\n\n"  # asked for every 2 s, and only 1.8 s are left
            for _ in range(20):
                time.sleep(0.3)
                yield b": keep-alive\n\n"

    asked: list[str] = []

    def slow(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.params["heartbeat"])
        return httpx.Response(200, stream=Slow())

    with _client(slow) as client, pytest.raises(dc1.TimeoutError):
        list(client.jobs.stream("job-1", timeout=2.5))
    assert asked == ["2", "1"]


def test_retry_advice_is_read_as_seconds_or_a_date_and_kept_within_a_wait(monkeypatch):
    slept: list[float] = []
    monkeypatch.setattr("dc1._client.time.sleep", slept.append)
    later = email.utils.format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    for advice, expected in (("3", 3.0), (later, 29.0), ("soon", None)):
        with _client(
            lambda request, a=advice: httpx.Response(503, json={}, headers={"retry-after": a})
        ) as client:
            client.max_retries = 1
            with pytest.raises(dc1.ProviderUnavailableError) as busy:
                client.balance()
        if expected is None:
            assert busy.value.retry_after is None
        else:
            assert busy.value.retry_after == pytest.approx(expected, abs=1.5) and slept[-1] >= expected - 1
    limited = {"error": {"message": "slow", "code": "rate_limit_exceeded", "retry_after_seconds": 6}}
    limiting = _client(lambda request: httpx.Response(429, json=limited))
    with limiting as client, pytest.raises(dc1.TimeoutError):  # not RateLimitError after 12 s: 2 s came first
        client.jobs.wait("job-1", timeout=2, stream=False)


def test_a_wait_polls_through_a_short_outage(monkeypatch):
    monkeypatch.setattr("dc1._client.time.sleep", lambda seconds: None)
    job = {"job_id": "job-1", "status": "completed", "job_type": "llm_inference", "cost_halala": 15}
    output = {"job_id": "job-1", "status": "completed", "result": {"response": "hi"}, "actual_cost_halala": 3}
    outage = iter(range(7))  # more failures than one call retries

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/output"):
            return httpx.Response(200, json=output)
        if next(outage, None) is not None:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200, json={"job": job})

    with _client(answer) as client:
        assert client.jobs.wait("job-1", timeout=60, interval=0.01, stream=False).text == "hi"


def test_an_ended_vllm_job_s_endpoint_is_not_handed_out():
    ended = {**SERVING, "status": "completed"}

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/output"):
            return httpx.Response(200, json=ended)
        return httpx.Response(200, json={"job": VLLM_JOB})

    with _client(answer) as client, pytest.raises(ValueError, match="has ended"):
        client.jobs.endpoint("job-1")


def test_an_answer_that_is_not_the_api_s_json_is_a_clear_error():
    page = "<html><body>Welcome to nginx</body></html>"
    with (
        _client(lambda request: httpx.Response(200, text=page)) as client,
        pytest.raises(dc1.DC1Error, match="did not answer as DCP's API does"),
    ):
        client.balance()


def test_an_event_s_type_does_not_carry_over_to_the_next():
    body = 'event: ping\n\ndata: {"text": "hello"}\n\nevent: done\ndata: {"status": "completed"}\n\n'
    with _client(lambda request: httpx.Response(200, text=body)) as client:
        assert [event.type for event in client.jobs.stream("job-1")] == ["message", "done"]
