"""The interface every runtime implements, and what a run reports back."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


class JobFailed(Exception):
    """The job cannot run or failed; the message is shown to the renter. ``own_fault``: the job's own program
    failed (a non-zero exit) or ran out its time, and the renter pays for the time it ran; otherwise the
    provider could not run it, and the job is refunded."""

    def __init__(self, message: str, *, own_fault: bool = False) -> None:
        super().__init__(message)
        self.own_fault = own_fault


class Events(Protocol):
    """Where a runtime sends what happens while it runs."""

    def progress(self, percent: int) -> None: ...

    def tokens(self, text: str) -> None: ...

    def log(self, line: str) -> None: ...

    def endpoint(self, url: str) -> None: ...

    @property
    def cancelled(self) -> bool: ...

    async def wait_cancelled(self, within: float) -> bool:
        """Wait until the job is cancelled or ``within`` seconds pass; True if it was cancelled."""
        ...


@dataclass
class RunResult:
    result: dict[str, Any]
    tokens_generated: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Runtime(Protocol):
    job_type: str

    def models(self) -> list[str]:
        """The models this runtime can serve here (reported as cached_models)."""
        ...

    async def prepare(self) -> None:
        """Load what this runtime needs ahead of its first job (a model into memory)."""
        ...

    async def run(self, spec: dict[str, Any], events: Events) -> RunResult:
        """Run the job; raise JobFailed with a clear message when it cannot."""
        ...

    async def close(self) -> None: ...
