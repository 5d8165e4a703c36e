"""The access log: keys redacted from its lines, and each line written once the event loop next turns."""

from __future__ import annotations

import asyncio
import logging

from dcp.kit.logs import AfterResponse, RedactSecrets, redact_access_log


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def _logger(name: str) -> tuple[logging.Logger, _Lines]:
    lines = _Lines()
    logger = logging.getLogger(name)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.handlers = [AfterResponse(lines)]
    logger.filters = [RedactSecrets()]
    return logger, lines


def test_a_key_in_the_query_is_redacted() -> None:
    logger, lines = _logger("test.access.redact")
    logger.info('%s - "%s %s" %d', "127.0.0.1:1", "GET", "/api/jobs?key=dc1-renter-secret&x=1", 200)
    assert lines.lines == ['127.0.0.1:1 - "GET /api/jobs?key=[redacted]&x=1" 200']


def test_a_key_is_redacted_however_its_name_is_written_and_from_websocket_lines() -> None:
    logger, lines = _logger("test.access.spelled")
    for query in ("?k%65y=dc1-provider-secret", "?API_KEY=dc1-provider-secret&protocol=dcp-link/1"):
        logger.info('%s - "WebSocket %s" [accepted]', "127.0.0.1:1", f"/api/providers/link{query}")
    assert lines.lines == [
        '127.0.0.1:1 - "WebSocket /api/providers/link?k%65y=[redacted]" [accepted]',
        '127.0.0.1:1 - "WebSocket /api/providers/link?API_KEY=[redacted]&protocol=dcp-link/1" [accepted]',
    ]
    redact_access_log()
    assert any(isinstance(f, RedactSecrets) for f in logging.getLogger("uvicorn.error").filters)


def test_a_vllm_endpoint_s_access_token_is_redacted() -> None:
    logger, lines = _logger("test.access.endpoint")
    path = "/api/jobs/job-1/endpoint/0123456789abcdef0123456789abcdef/v1/models"
    logger.info('%s - "%s %s" %d', "127.0.0.1:1", "GET", path, 200)
    assert lines.lines == ['127.0.0.1:1 - "GET /api/jobs/job-1/endpoint/[redacted]/v1/models" 200']


async def test_lines_wait_for_the_loop_to_turn_and_keep_their_order() -> None:
    logger, lines = _logger("test.access.deferred")
    logger.info("first")
    logger.info("second")
    assert lines.lines == []  # the response is written before the loop turns
    await asyncio.sleep(0)
    assert lines.lines == ["first", "second"]
