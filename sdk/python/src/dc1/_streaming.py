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
# A stream that ends before ``done`` (a server restarting ends every stream; its followers come back) or
# breaks is opened again: at once if it had held past its first event (the job's snapshot), else after
# pauses doubling from 0.5 s to 5 s, until the deadline or until it has not held for this long. A stream
# that could not be opened at all fails at once.
_REOPEN_GIVE_UP_SECONDS = 60.0
REOPEN_STATUSES = frozenset({502, 503, 504})


@dataclass(frozen=True)
class StreamPlan:
    """The request for one job's stream, and the deadline (monotonic seconds) it must end by, if any."""

    job_id: str
    deadline: float | None

    @property
    def path(self) -> str:
        return f"/api/jobs/{self.job_id}/events"

    def heartbeat(self) -> int:
        """The keep-alive interval to ask for: never longer than the time left, so that a silent stream
        wakes the reader at its deadline (one opened with a longer interval is opened again near it)."""
        return max(1, int(min(_HEARTBEAT_SECONDS, self._remaining())))

    def request(self, heartbeat: int) -> dict[str, Any]:
        """The stream request's arguments; a stream silent for longer than its keep-alives is a dead one."""
        return {"params": {"heartbeat": heartbeat}, "timeout": httpx.Timeout(30.0, read=heartbeat + 10.0)}

    def renew_due(self, heartbeat: int) -> bool:
        """Whether the next keep-alive of a stream opened with ``heartbeat`` could come after the deadline,
        and one opened now would ask for a shorter one."""
        return self._remaining() < heartbeat and self.heartbeat() < heartbeat

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


def reopenable(error: DC1Error) -> DC1Error:
    """A refused stream's error, if opening it again may help (a 502-504 while a server restarts); raised
    at once otherwise."""
    if error.status not in REOPEN_STATUSES:
        raise error
    return error


class Following:
    """One follow of a job's stream, across the connections it takes: what each asks for and reads, and when
    a stream that ended early or broke is opened again, or given up (see above). Both clients drive it."""

    def __init__(self, plan: StreamPlan) -> None:
        self.plan = plan
        self.failures = 0
        self.lost_since: float | None = None
        self._heartbeat = 0
        self._decoder = EventDecoder()
        self._events_here = 0
        self._ever_opened = False

    def request(self) -> dict[str, Any]:
        """The next connection's request arguments."""
        self._heartbeat = self.plan.heartbeat()
        return self.plan.request(self._heartbeat)

    def opened(self) -> None:
        self._decoder, self._events_here, self._ever_opened = EventDecoder(), 0, True

    def read(self, line: str) -> Event | None:
        """The event ``line`` completes, if any; a line past the connection's first event shows that the
        stream holds. TimeoutError at the deadline."""
        self.plan.check()
        if self._events_here:
            self.failures, self.lost_since = 0, None
        event = self._decoder.feed(line)
        self._events_here += event is not None
        return event

    def renew_due(self) -> bool:
        return self.plan.renew_due(self._heartbeat)

    def pause(self, cause: DC1Error) -> float:
        """Seconds to wait before opening the stream again; raises ``cause`` when it is time to give up,
        or TimeoutError at the deadline."""
        self.plan.check()
        now = time.monotonic()
        self.lost_since = now if self.lost_since is None else self.lost_since
        if not self._ever_opened or now - self.lost_since > _REOPEN_GIVE_UP_SECONDS:
            raise cause
        delay = 0.0 if self.failures == 0 else min(5.0, 0.5 * 2.0 ** (self.failures - 1))
        self.failures += 1
        return min(delay, self.plan._remaining())


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
        kind, lines = self._type, self._data
        self._type, self._data = "message", []  # an event's type never carries over to the next
        if not lines:
            return None
        text = "\n".join(lines)
        try:
            data: Any = json.loads(text)
        except ValueError:
            data = {"text": text}
        return Event(kind, data if isinstance(data, dict) else {"value": data})
