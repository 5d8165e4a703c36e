"""The Python SDK for DCP, the GPU compute marketplace: ``dc1.Client`` and ``dc1.AsyncClient``."""

from dc1._async_client import AsyncClient
from dc1._client import Client
from dc1._core import VERSION
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
from dc1._models import Balance, Event, Job, Output, Provider, sar

__version__ = VERSION

__all__ = [
    "APIConnectionError",
    "AsyncClient",
    "AuthenticationError",
    "Balance",
    "Client",
    "DC1Error",
    "Event",
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
    "__version__",
    "sar",
]
