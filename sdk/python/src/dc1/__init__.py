"""The Python SDK for DCP, the GPU compute marketplace: ``dc1.Client(api_key=…, base_url=…)``."""

from dc1._client import Client
from dc1._exceptions import (
    APIConnectionError,
    AuthenticationError,
    DC1Error,
    InsufficientBalanceError,
    JobFailedError,
    NotFoundError,
    ProviderUnavailableError,
    RateLimitError,
    TimeoutError,
    ValidationError,
)
from dc1._models import Balance, Job, Output, Provider, sar

__all__ = [
    "APIConnectionError",
    "AuthenticationError",
    "Balance",
    "Client",
    "DC1Error",
    "InsufficientBalanceError",
    "Job",
    "JobFailedError",
    "NotFoundError",
    "Output",
    "Provider",
    "ProviderUnavailableError",
    "RateLimitError",
    "TimeoutError",
    "ValidationError",
    "sar",
]
