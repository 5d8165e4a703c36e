"""/v1's completion endpoints skip FastAPI's generic dependency solving (kit/fast_route.py): the same
answers as before for every malformed request, in the same order of checks."""

from __future__ import annotations

from tests.api import test_gateway as gateway_tests

CHAT, _renter = gateway_tests.CHAT, gateway_tests._renter
http, engines = gateway_tests.http, gateway_tests.engines  # the same fixtures


async def test_the_checks_and_their_order(http, admin, engines):
    await engines()
    _, auth = await _renter(http, admin)
    path = "/v1/chat/completions"
    json_type = {"content-type": "application/json"}

    async def error(*, headers: dict, content: bytes) -> tuple[int, str, str]:
        answer = await http.post(path, headers=headers, content=content)
        body = answer.json()["error"]
        return answer.status_code, body["code"], body["message"]

    # The body's JSON is read before the key is checked, as FastAPI does; its validation comes after.
    assert await error(headers=json_type, content=b"{not json") == (
        400,
        "invalid_request_error",
        "Invalid JSON body",
    )
    assert (await error(headers=json_type, content=b'{"model": 1}'))[:2] == (401, "authentication_error")
    assert await error(headers={**auth, **json_type}, content=b"") == (
        400,
        "invalid_request_error",
        "Missing request body: JSON expected",
    )
    status, code, message = await error(headers={**auth, **json_type}, content=b'{"model": "fake-model"}')
    assert (status, code, message) == (400, "invalid_request_error", "Missing required fields: messages")
    binary = await http.post(path, headers={**auth, **json_type}, content=b"\x9a\x00\xff")
    assert binary.status_code == 400
    as_text = await http.post(path, headers={**auth, "content-type": "text/plain"}, content=b"{}")
    assert as_text.status_code == 400 and as_text.json()["error"]["type"] == "invalid_request_error"
    revoked = {"authorization": "Bearer dc1-renter-" + "x" * 43}
    assert (await error(headers={**revoked, **json_type}, content=b"{}"))[:2] == (401, "authentication_error")
    ok = await http.post(path, headers=auth, json=CHAT)
    assert ok.status_code == 200 and ok.headers["content-type"] == "application/json"
    assert ok.json()["choices"][0]["message"]["content"] == "Riyadh"
