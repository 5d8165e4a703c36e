"""Text no database stores, refused at the door: NUL characters, unpaired surrogates, JSON's NaN and Infinity.

Python's JSON parser accepts all of them, and they reached SQL: SQLite cannot encode a lone surrogate,
PostgreSQL refuses NUL in text and NaN in JSON, and each was a 500 on an ordinary request (a sign-up name, a
heartbeat's GPU name, a job's result)."""

from __future__ import annotations

import json
import re
from typing import Any

# Cheap to look for in the raw body; only a body that has one is parsed to be sure.
_SUSPECT = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])|NaN|Infinity")


class _NotANumber(ValueError):
    pass


def _refuse_constant(name: str) -> Any:
    raise _NotANumber(name)


def unstorable(body: bytes, content_type: bytes) -> str | None:
    """Why the request's body carries text no database stores; None when it does not. (A path with NUL names
    nothing: ``RequestContext`` answers 404. Query values that reach SQL are checked by ``fields.NoNul``.)"""
    if not body:
        return None
    main = content_type.partition(b";")[0].strip().lower()
    if main == b"application/x-www-form-urlencoded":
        return "the form must not contain NUL characters (%00)" if b"%00" in body else None
    if not (main == b"application/json" or main.endswith(b"+json")) or not _SUSPECT.search(body):
        return None
    try:
        return _bad_text(json.loads(body, parse_constant=_refuse_constant))
    except _NotANumber as exc:
        return f"{exc} is not a JSON number"
    except ValueError:
        return None  # not JSON at all: the endpoint's own parse says so
    except RecursionError:
        return "the JSON is nested too deeply"


def _bad_text(value: Any) -> str | None:
    if isinstance(value, str):
        if "\x00" in value:
            return "text must not contain NUL characters (\\u0000)"
        try:
            value.encode()
        except UnicodeEncodeError:
            return "text must not contain unpaired surrogates (\\ud800 to \\udfff alone)"
        return None
    if isinstance(value, dict):
        parts: list[Any] = [*value.keys(), *value.values()]
    elif isinstance(value, list):
        parts = value
    else:
        return None
    for part in parts:
        if (problem := _bad_text(part)) is not None:
            return problem
    return None
