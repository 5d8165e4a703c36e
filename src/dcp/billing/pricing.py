"""Prices: quotes, per-second costs and the provider/platform split, all in integer halala."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from dcp.config import PricingSettings
from dcp.kit.money import ceil_div

PricingClass = Literal["priority", "standard", "economy"]
JobType = Literal["llm_inference", "image_generation", "vllm_serve", "custom_container"]
JOB_TYPES: tuple[JobType, ...] = ("llm_inference", "image_generation", "vllm_serve", "custom_container")
SECONDS_PER_MINUTE = 60
TOKENS_PER_PRICE_UNIT = 1_000_000


def effective_prices(pricing: PricingSettings, provider_prices: dict[str, int]) -> dict[str, int]:
    """Per-minute prices a provider charges: its own where it set one, the defaults elsewhere."""
    return {job_type: provider_prices.get(job_type, pricing.per_minute(job_type)) for job_type in JOB_TYPES}


def class_percent(pricing: PricingSettings, pricing_class: PricingClass) -> int:
    percent: int = getattr(pricing, f"{pricing_class}_percent")
    return percent


def quote(*, per_minute: int, minutes: int, percent: int) -> int:
    """The most a job can cost: price * minutes * class multiplier, rounded up to a whole halala."""
    return ceil_div(per_minute * minutes * percent, 100)


def cost_of_run(*, per_minute: int, seconds: int, percent: int, cap: int) -> int:
    """What a run of ``seconds`` costs, billed per second, rounded up, never above ``cap`` (the hold)."""
    return min(cap, ceil_div(per_minute * percent * max(seconds, 0), SECONDS_PER_MINUTE * 100))


@dataclass(frozen=True)
class Split:
    provider: int
    platform: int


def split(cost: int, *, provider_percent: int) -> Split:
    """The provider's share rounds down; the platform gets the remainder, so the parts always add up."""
    provider = cost * provider_percent // 100
    return Split(provider=provider, platform=cost - provider)


@dataclass(frozen=True)
class TokenPrice:
    input_per_million: int
    output_per_million: int


def token_cost(*, prompt_tokens: int, completion_tokens: int, price: TokenPrice) -> int:
    """The cost of a /v1 request, rounded up to a whole halala."""
    return ceil_div(
        prompt_tokens * price.input_per_million + completion_tokens * price.output_per_million,
        TOKENS_PER_PRICE_UNIT,
    )
