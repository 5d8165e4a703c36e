"""The SDK's own models (no server imports): what the API answers, with amounts in integer halala."""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

TERMINAL = ("completed", "failed", "cancelled")


def sar(halala: int) -> Decimal:
    """Halala to SAR, exactly: ``sar(12345) == Decimal("123.45")``."""
    return (Decimal(halala) / 100).quantize(Decimal("0.01"))


@dataclass(frozen=True)
class Balance:
    balance_halala: int
    held_halala: int

    @property
    def balance_sar(self) -> Decimal:
        return sar(self.balance_halala)

    @classmethod
    def from_api(cls, body: dict[str, Any]) -> Balance:
        return cls(int(body["balance_halala"]), int(body["held_halala"]))


@dataclass(frozen=True)
class Provider:
    id: int
    name: str
    gpu_model: str
    vram_gb: int
    is_live: bool
    status: str
    price_per_minute_halala: dict[str, int]
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_api(cls, body: dict[str, Any]) -> Provider:
        return cls(
            int(body["id"]),
            body["name"],
            body["gpu_model"],
            int(body["vram_gb"]),
            bool(body["is_live"]),
            body["status"],
            dict(body["price_per_minute_halala"]),
            body,
        )


@dataclass(frozen=True)
class Job:
    job_id: str
    status: str
    job_type: str
    provider_id: int | None
    cost_halala: int
    actual_cost_halala: int | None
    refunded_halala: int | None
    error: str | None
    raw: dict[str, Any] = field(repr=False, compare=False)

    @property
    def done(self) -> bool:
        return self.status in TERMINAL

    @classmethod
    def from_api(cls, body: dict[str, Any]) -> Job:
        return cls(
            body["job_id"],
            body["status"],
            body["job_type"],
            body.get("provider_id"),
            int(body["cost_halala"]),
            body.get("actual_cost_halala"),
            body.get("refunded_halala"),
            body.get("error"),
            body,
        )


@dataclass(frozen=True)
class Output:
    """A finished job's result; ``ready`` is False (and ``result`` empty) while it still runs."""

    job_id: str
    status: str
    ready: bool
    result: dict[str, Any]
    tokens_generated: int | None
    actual_cost_halala: int

    @property
    def text(self) -> str | None:
        return self.result.get("response")

    @property
    def cost_sar(self) -> Decimal:
        return sar(self.actual_cost_halala)

    @property
    def endpoint_url(self) -> str | None:
        """A running vllm_serve job's OpenAI-compatible base URL: the URL is the credential (keep it private),
        any API key will do."""
        return self.result.get("endpoint_url")

    @property
    def image_bytes(self) -> bytes:
        """An image_generation result's image (PNG); ValueError for a result without one."""
        encoded = self.result.get("image_base64")
        if not isinstance(encoded, str):
            raise ValueError(f"Job {self.job_id} has no image in its result")
        try:
            return base64.b64decode(encoded, validate=True)
        except binascii.Error as exc:
            raise ValueError(f"Job {self.job_id} has a malformed image in its result") from exc

    def save_image(self, path: str | os.PathLike[str]) -> Path:
        """Write the image to ``path`` (e.g. ``out.png``) and return that path."""
        target = Path(path)
        target.write_bytes(self.image_bytes)
        return target

    @classmethod
    def from_api(cls, body: dict[str, Any]) -> Output:
        """A finished job's output (the API's 200)."""
        return cls(
            body["job_id"],
            body["status"],
            True,
            body.get("result") or {},
            body.get("tokens_generated"),
            int(body.get("actual_cost_halala") or 0),
        )

    @classmethod
    def pending(cls, body: dict[str, Any]) -> Output:
        """A queued or running job's answer (the API's 202): no result, nothing charged yet."""
        return cls(body["job_id"], body["status"], False, {}, None, 0)


@dataclass(frozen=True)
class Event:
    """One event of a job's live stream: ``status``, ``progress``, ``tokens``, ``log``, then ``done``."""

    type: str
    data: dict[str, Any]

    @property
    def text(self) -> str:
        """The generated text of a ``tokens`` event ("" for other events)."""
        return str(self.data.get("text", "")) if self.type == "tokens" else ""

    @property
    def status(self) -> str | None:
        return self.data.get("status") if self.type in ("status", "done") else None

    @property
    def progress(self) -> int | None:
        return self.data.get("progress") if self.type == "progress" else None

    @property
    def done(self) -> bool:
        return self.type == "done"


@dataclass(frozen=True)
class Page:
    """One page of a listing and the cursor of the next (None after the last)."""

    jobs: list[Job]
    next_before: str | None
