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
from dc1._params import (
    ContainerParams,
    ImageParams,
    JobType,
    LlmParams,
    SubmitOptions,
    VllmServeParams,
)

__version__ = VERSION

__all__ = [
    "APIConnectionError",
    "AsyncClient",
    "AuthenticationError",
    "Balance",
    "Client",
    "ContainerParams",
    "DC1Error",
    "Event",
    "ImageParams",
    "InsufficientBalanceError",
    "Job",
    "JobFailedError",
    "JobType",
    "LlmParams",
    "NotFoundError",
    "Output",
    "Provider",
    "ProviderUnavailableError",
    "RateLimitError",
    "SubmitOptions",
    "TimeoutError",
    "ValidationError",
    "VllmServeParams",
    "__version__",
    "sar",
]
