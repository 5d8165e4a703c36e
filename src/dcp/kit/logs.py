"""The access log: secrets kept out of it, and each line written once its response is on its way."""

from __future__ import annotations

import asyncio
import logging
import re
from urllib.parse import unquote_plus

_SECRET_NAMES = frozenset({"key", "api_key", "renter_key", "provider_key", "token"})
_QUERY_PARAMETER = re.compile(r"([?&])([^=&\s\"]+)=([^&\s\"]*)")
# A vllm_serve endpoint's URL is its credential: /api/jobs/{job}/endpoint/{token}/v1/...
_SECRET_IN_PATH = re.compile(r"(/endpoint/)[^/?\s\"]+")


class RedactSecrets(logging.Filter):
    """Replaces the value of key-like query parameters, and a vllm_serve endpoint's access token, in a
    record's arguments with ``[redacted]``: a key sent as ``?key=`` would otherwise be written by the access
    log."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_redacted(arg) if isinstance(arg, str) else arg for arg in record.args)
        return True


def _redacted(text: str) -> str:
    if "=" in text:
        text = _QUERY_PARAMETER.sub(_redacted_parameter, text)
    if "/endpoint/" in text:
        text = _SECRET_IN_PATH.sub(r"\1[redacted]", text)
    return text


def _redacted_parameter(found: re.Match[str]) -> str:
    """A key-like parameter's value redacted, its name read as the server reads it (``k%65y`` is ``key``)."""
    if unquote_plus(found[2]).lower() not in _SECRET_NAMES:
        return found[0]
    return f"{found[1]}{found[2]}=[redacted]"


class AfterResponse(logging.Handler):
    """Hands each record to ``target`` when the event loop next turns. uvicorn logs a request's line just
    before it writes the response's head, so formatting and writing the line there delayed every response;
    the request's task writes its head (and a whole body, or a stream's first event) before it next yields,
    and the line is written then. Lines keep their order; without a running loop they are written at once."""

    def __init__(self, target: logging.Handler) -> None:
        super().__init__(target.level)
        self.target = target

    def emit(self, record: logging.LogRecord) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.target.handle(record)
            return
        loop.call_soon(self.target.handle, record)


def redact_access_log() -> None:
    """Call after uvicorn has configured its loggers (it does so when its Config is made). Its error logger
    too: it writes each WebSocket's path, and a daemon may send its key as ``?key=``."""
    for name in ("uvicorn.access", "uvicorn.error"):
        logging.getLogger(name).addFilter(RedactSecrets())


def access_log_after_responses() -> None:
    """Write uvicorn's access lines off the responses' path (``AfterResponse``); call after its Config is
    made."""
    access = logging.getLogger("uvicorn.access")
    access.handlers = [AfterResponse(handler) for handler in access.handlers]
