"""The error contract: every failure is JSON {"error": ...}, with the right status, and never a trace."""

from __future__ import annotations

import httpx
import pytest

from dcp.app import create_app
from tests.support.factories import funded_renter, llm_job, online_provider, submit
from tests.support.provider_client import TestProvider


class TestContract:
    async def test_unknown_route_and_method(self, client):
        missing = await client.get("/api/nothing-here")
        assert missing.status_code == 404 and missing.json() == {"error": "Not found"}
        wrong = await client.delete("/api/renters/register")
        assert wrong.status_code == 405 and wrong.json() == {"error": "Method not allowed"}
        # The hottest routes are added to the app flat (kit/fast_route.include_flat): the same answers.
        for path in ("/api/providers/heartbeat", "/api/dc1/jobs/submit"):
            wrong = await client.put(path)
            assert wrong.status_code == 405 and wrong.json() == {"error": "Method not allowed"}

    @pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b'"text"', b"null"])
    async def test_malformed_bodies(self, client, body):
        answer = await client.post(
            "/api/renters/register", content=body, headers={"content-type": "application/json"}
        )
        assert answer.status_code == 400
        assert set(answer.json()) == {"error"}
        assert "Traceback" not in answer.text and "pydantic" not in answer.text

    async def test_messages_name_the_field_as_sent(self, client):
        empty = await client.post("/api/renters/register", headers={"content-type": "application/json"})
        assert empty.status_code == 400 and empty.json() == {"error": "Missing request body: JSON expected"}
        renter = (await client.post("/api/renters/register", json={"name": "A", "email": "a@x.co"})).json()
        body = {"model": "m", "prompt": [1, 2]}  # prompt is text, or a list of one text
        answer = await client.post("/v1/completions", headers={"x-renter-key": renter["api_key"]}, json=body)
        assert answer.json()["error"]["message"] == (
            "Invalid prompt: a list of prompts may hold one string: batches and token ids are not served"
        )

    async def test_body_too_large(self, client, settings):
        big = b'{"name": "' + b"x" * settings.max_body_bytes + b'"}'
        answer = await client.post(
            "/api/renters/register", content=big, headers={"content-type": "application/json"}
        )
        assert answer.status_code == 413
        assert "too large" in answer.json()["error"]

    async def test_headers_too_large(self, client, settings):
        answer = await client.get(
            "/api/renters/available-providers", headers={"x-padding": "a" * settings.max_header_bytes}
        )
        assert answer.status_code == 431
        assert "headers too large" in answer.json()["error"]
        v1 = await client.get("/v1/models", headers={"x-padding": "a" * settings.max_header_bytes})
        error = v1.json()["error"]  # a client's error: sent again unchanged, it is refused again
        assert v1.status_code == 431 and error["code"] == "request_headers_too_large"
        assert error["retryable"] is False

    async def test_chunked_body_too_large(self, client, settings):
        async def chunks():
            for _ in range(settings.max_body_bytes // 1024 + 2):
                yield b"x" * 1024

        answer = await client.post(
            "/api/renters/register", content=chunks(), headers={"content-type": "application/json"}
        )
        assert answer.status_code == 413

    async def test_request_ids(self, client):
        answer = await client.get("/api/renters/available-providers", headers={"x-request-id": "abc-123"})
        assert answer.headers["x-request-id"] == "abc-123"
        generated = await client.get(
            "/api/renters/available-providers", headers={"x-request-id": "bad id!\n"}
        )
        assert len(generated.headers["x-request-id"]) == 32

    async def test_unexpected_errors_are_logged_with_a_request_id_not_shown(self, settings, database, caplog):
        app = create_app(settings, db=database)

        @app.get("/api/boom")
        @app.get("/v1/boom")
        async def boom() -> None:
            raise RuntimeError("secret internals")

        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            answer = await http.get("/api/boom")
            v1 = await http.get("/v1/boom")
        assert answer.status_code == 500
        body = answer.json()
        assert body["error"] == "internal error" and body["request_id"] == answer.headers["x-request-id"]
        assert "secret internals" not in answer.text
        assert body["request_id"] in caplog.text
        assert v1.status_code == 500 and "secret internals" not in v1.text  # /v1 keeps its envelope
        assert v1.json()["error"] == {
            "message": "internal error",
            "type": "api_error",
            "code": "internal_error",
            "status": 500,
            "retryable": True,
            "request_id": v1.headers["x-request-id"],
        }


class TestTextNoDatabaseStores:
    """NUL characters, unpaired surrogates, NaN and Infinity: each reached SQL and was a 500 on one database
    or the other. Now a 400 that changes nothing, on every route."""

    @pytest.mark.parametrize(
        ("name", "problem"),
        [
            (r'"Bad\ud800Name"', "unpaired surrogates"),
            (r'"Bad\udc80"', "unpaired surrogates"),
            (r'"Nul\u0000Name"', "NUL characters"),
            ("NaN", "NaN is not a JSON number"),
            ("-Infinity", "-Infinity is not a JSON number"),
        ],
    )
    async def test_sign_up(self, client, name, problem):
        body = f'{{"name": {name}, "email": "odd@example.com"}}'.encode()
        answer = await client.post(
            "/api/renters/register", content=body, headers={"content-type": "application/json"}
        )
        assert answer.status_code == 400 and problem in answer.json()["error"]
        again = await client.post("/api/renters/register", json={"name": "Odd", "email": "odd@example.com"})
        assert again.status_code == 201  # the refused sign-up left nothing behind

    async def test_what_looks_odd_but_is_text_passes(self, client):
        body = rb'{"name": "NaN \u00e9 \ud83d\ude80 \\u0000", "email": "fine@example.com"}'
        answer = await client.post(
            "/api/renters/register", content=body, headers={"content-type": "application/json"}
        )
        assert answer.status_code == 201, answer.text

    async def test_a_heartbeat_a_result_a_url_and_a_form(self, client, admin):
        provider = await online_provider(client)
        beat = rb'{"provider_hostname": "rig\u0000", "gpu_status": {"gpu_name": "RTX"}}'
        headers = {**provider.provider_headers, "content-type": "application/json"}
        answer = await client.post("/api/providers/heartbeat", content=beat, headers=headers)
        assert answer.status_code == 400 and "NUL" in answer.json()["error"]
        renter = await funded_renter(client, admin)
        await submit(client, renter, llm_job())
        daemon = TestProvider(client, provider)
        leased = await daemon.claim()
        await daemon.start(leased)
        path = f"/api/providers/jobs/{leased.job_id}/result"
        body = f'{{"lease_token": "{leased.lease_token}", "status": "completed", "result": {{"p": NaN}}}}'
        answer = await client.post(path, content=body.encode(), headers=headers)
        assert answer.status_code == 400 and "NaN" in answer.json()["error"]
        assert (await daemon.result(leased, result={"response": "Riyadh"})).status_code == 200
        answer = await client.get("/api/jobs/job%00x", headers=renter.renter_headers)
        assert answer.status_code == 404
        answer = await client.get("/api/admin/renters", params={"q": "a\x00"}, headers=admin)
        assert answer.status_code == 400 and "NUL" in answer.json()["error"]
        form = await client.post(
            "/renter/register",
            content=b"name=Nul%00&email=form%40example.com",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert form.status_code == 400

    async def test_json_nested_past_the_parser_s_depth_is_a_400(self, client):
        deep = "[" * 5000 + "]" * 5000
        headers = {"content-type": "application/json"}
        for path in ("/v1/chat/completions", "/api/jobs/submit", "/api/providers/heartbeat"):
            answer = await client.post(path, content=f'{{"seed": {deep}}}', headers=headers)
            assert answer.status_code == 400, (path, answer.text)  # read before the key: never a 500
        # Where the key may come in the body, and where the body is checked for text no database stores.
        for path in ("/api/renters/rotate-key", "/api/renters/register"):
            for content in (deep, f'{{"name": NaN, "seed": {deep}}}', "[" * 900 + '"\u0000"' + "]" * 900):
                answer = await client.post(path, content=content, headers=headers)
                assert answer.status_code in (400, 401), (path, content[:20], answer.text)

    async def test_v1_answers_in_its_envelope(self, client):
        body = rb'{"model": "m", "messages": [{"role": "user", "content": "hi\u0000"}]}'
        answer = await client.post(
            "/v1/chat/completions", content=body, headers={"content-type": "application/json"}
        )
        assert answer.status_code == 400
        assert answer.json()["error"]["code"] == "invalid_request_error"


class TestOpenApi:
    async def test_json_and_yaml(self, client):
        spec = (await client.get("/docs/openapi.json")).json()
        yaml_text = (await client.get("/docs/openapi.yaml")).text
        assert spec["openapi"].startswith("3.")
        assert "/api/providers/register:" in yaml_text

    async def test_every_operation_documents_its_errors_as_error_body(self, client):
        spec = (await client.get("/docs/openapi.json")).json()
        assert not any(path.startswith("/api/dc1") for path in spec["paths"])
        for path, methods in spec["paths"].items():
            for method, operation in methods.items():
                responses = operation["responses"]
                assert "422" not in responses, (method, path)
                errors = [code for code in responses if code.startswith(("4", "5"))]
                if operation.get("requestBody") or operation.get("parameters") or operation.get("security"):
                    assert errors, (method, path)
                for code in errors:
                    ref = responses[code]["content"]["application/json"]["schema"]["$ref"]
                    schema = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
                    assert "error" in schema["required"], (method, path, code)  # every error has its message

    async def test_seed_endpoints_are_in_the_spec(self, client):
        paths = (await client.get("/docs/openapi.json")).json()["paths"]
        for path, method in [
            ("/api/providers/register", "post"),
            ("/api/providers/me", "get"),
            ("/api/providers/heartbeat", "post"),
            ("/api/providers/pause", "post"),
            ("/api/providers/resume", "post"),
            ("/api/renters/register", "post"),
            ("/api/renters/me", "get"),
            ("/api/renters/balance", "get"),
            ("/api/renters/available-providers", "get"),
            ("/api/admin/dashboard", "get"),
        ]:
            assert method in paths[path], path
