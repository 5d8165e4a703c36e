"""A job's live event stream (Server-Sent Events): what to ask for, how to read it, when to give up."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import httpx

from dc1._core import connection_error
from dc1._exceptions import APIConnectionError, DC1Error, TimeoutError
from dc1._models import Event

_HEARTBEAT_SECONDS = 15  # the server sends a keep-alive comment this often, so a silent stream is a dead one


@dataclass(frozen=True)
class StreamPlan:
    """The request for one job's stream, and the deadline (monotonic seconds) it must end by, if any."""

    job_id: str
    deadline: float | None

    @property
    def path(self) -> str:
        return f"/api/jobs/{self.job_id}/events"

    @property
    def params(self) -> dict[str, int]:
        return {"heartbeat": max(1, int(min(_HEARTBEAT_SECONDS, self._remaining())))}

    @property
    def timeout(self) -> httpx.Timeout:
        return httpx.Timeout(30.0, read=self.params["heartbeat"] + 10.0)

    def check(self) -> None:
        """Called on every line read, keep-alives included: the wait ends at the deadline, not after it."""
        if self._remaining() <= 0:
            raise TimeoutError(f"Job {self.job_id} did not finish within the time allowed")

    def failure(self, exc: httpx.TransportError) -> DC1Error:
        """The error for a stream that broke: a timeout past the deadline, else a lost connection."""
        if self.deadline is not None and self._remaining() <= 0:
            return TimeoutError(f"Job {self.job_id} did not finish within the time allowed")
        return connection_error(exc)

    def ended_early(self) -> APIConnectionError:
        return APIConnectionError(f"The event stream of job {self.job_id} closed before the job finished")

    def _remaining(self) -> float:
        return float("inf") if self.deadline is None else self.deadline - time.monotonic()


def plan(job_id: str, timeout: float | None) -> StreamPlan:
    return StreamPlan(job_id, None if timeout is None else time.monotonic() + timeout)


class EventDecoder:
    """Turns the stream's lines into events (the server's SSE: ``event:``, ``data:``, comments)."""

    def __init__(self) -> None:
        self._type = "message"
        self._data: list[str] = []

    def feed(self, line: str) -> Event | None:
        """The event a blank line completes, else None."""
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self._type = value
        elif name == "data":
            self._data.append(value)
        return None

    def _dispatch(self) -> Event | None:
        if not self._data:
            return None
        kind, text = self._type, "\n".join(self._data)
        self._type, self._data = "message", []
        try:
            data: Any = json.loads(text)
        except ValueError:
            data = {"text": text}
        return Event(kind, data if isinstance(data, dict) else {"value": data})
