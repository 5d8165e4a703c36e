"""Keeping secrets out of the logs: a key sent as ``?key=`` would otherwise be written by the access log."""

from __future__ import annotations

import logging
import re

_SECRET_IN_QUERY = re.compile(
    r"((?:[?&])(?:key|api_key|renter_key|provider_key|token)=)[^&\s\"]*", re.IGNORECASE
)


class RedactSecrets(logging.Filter):
    """Replaces the value of key-like query parameters in a record's arguments with ``[redacted]``."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                _SECRET_IN_QUERY.sub(r"\1[redacted]", arg) if isinstance(arg, str) else arg
                for arg in record.args
            )
        return True


def redact_access_log() -> None:
    """Call after uvicorn has configured its loggers (it does so when its Config is made)."""
    logging.getLogger("uvicorn.access").addFilter(RedactSecrets())
