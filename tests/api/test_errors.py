"""The error contract: every failure is JSON {"error": ...}, with the right status, and never a trace."""

from __future__ import annotations

import httpx
import pytest

from dcp.app import create_app


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
        async def boom() -> None:
            raise RuntimeError("secret internals")

        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            answer = await http.get("/api/boom")
        assert answer.status_code == 500
        body = answer.json()
        assert body["error"] == "internal error" and body["request_id"] == answer.headers["x-request-id"]
        assert "secret internals" not in answer.text
        assert body["request_id"] in caplog.text


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
