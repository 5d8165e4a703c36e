"""The gateway benchmark's summary: the figures the /v1 issue sets targets for, the ratios, which are met."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

from bench.processes import LOAD_CORE, SERVER_CORE

TARGETS = {"added_p50_ms": 1.0, "added_p99_ms": 5.0, "ttft_overhead_p50_ms": 2.0, "rps_per_core_ratio": 3.0}


def summary(
    latency_by_rate: dict[int, dict[str, Any]], throughput: dict[str, Any], *, litellm: dict[str, Any]
) -> dict[str, Any]:
    """The figures at the lowest rate (every target server measured there) are the headline; the higher
    rates show how DCP's added latency, and the two forwarders', move with the load."""
    rate = min(latency_by_rate)
    latency = latency_by_rate[rate]
    figures = {name: _figures(name, latency, throughput) for name in ("dcp", "dcp_relayed", "litellm")}
    result: dict[str, Any] = {
        "date": datetime.now(UTC).date().isoformat(),
        "machine": f"{os.cpu_count()} cores; servers on core {SERVER_CORE}, load and fakes on {LOAD_CORE}",
        "open_loop_rate_per_second": rate,
        "dcp": figures["dcp"],
        "dcp_free_model_requests_per_core_second": {
            mode: throughput[mode]["dcp_free_model"]["requests_per_core_second"] for mode in throughput
        },
        # Requests taken by a replica without the pool's links, relayed to the one with them (no target;
        # CPU per request counts both replicas).
        "dcp_relayed": figures["dcp_relayed"],
        "by_rate": {each: _by_rate(latency_by_rate[each]) for each in sorted(latency_by_rate)},
    }
    if "unavailable" in litellm:
        result["litellm"] = f"not measured: {litellm['unavailable'][:300]}"
        ratios: dict[str, float | None] = {}
    else:
        result["litellm"] = {"version": litellm["version"], **figures["litellm"]}
        ratios = {
            "rps_per_core_dcp_to_litellm": _ratio(figures, "requests_per_core_second"),
            "stream_rps_per_core_dcp_to_litellm": _ratio(figures, "stream_requests_per_core_second"),
            "added_p50_litellm_to_dcp": _ratio(figures, "added_p50_ms", inverse=True),
            "ttft_overhead_p50_litellm_to_dcp": _ratio(figures, "ttft_overhead_p50_ms", inverse=True),
        }
    result["ratios"] = ratios
    result["targets"] = TARGETS
    result["meets"] = _meets(figures["dcp"], ratios)
    return result


def _figures(name: str, latency: dict[str, Any], throughput: dict[str, Any]) -> dict[str, float]:
    if name not in latency["chat"]:
        return {}
    return {
        **_latency_figures(latency, name),
        "requests_per_core_second": throughput["chat"][name]["requests_per_core_second"],
        "stream_requests_per_core_second": throughput["chat_stream"][name]["requests_per_core_second"],
    }


def _latency_figures(latency: dict[str, Any], name: str) -> dict[str, float]:
    return {
        "added_p50_ms": latency["chat"][name]["added_p50_ms"],
        "added_p99_ms": latency["chat"][name]["added_p99_ms"],
        "ttft_overhead_p50_ms": latency["chat_stream"][name]["added_p50_ms"],
        "ttft_overhead_p99_ms": latency["chat_stream"][name]["added_p99_ms"],
    }


def _by_rate(latency: dict[str, Any]) -> dict[str, Any]:
    """DCP's latency targets at one rate, the direct call's own p50, and what two byte forwarders add."""
    dcp = _latency_figures(latency, "dcp")
    return {
        **dcp,
        "direct_p50_ms": latency["chat"]["direct"]["p50_ms"],
        "forwarders_added_p50_ms": latency["chat"]["forwarders"]["added_p50_ms"],
        "forwarders_ttft_overhead_p50_ms": latency["chat_stream"]["forwarders"]["added_p50_ms"],
        "meets": {
            name: dcp[name] < TARGETS[name]
            for name in ("added_p50_ms", "added_p99_ms", "ttft_overhead_p50_ms")
        },
    }


def _ratio(figures: dict[str, dict[str, float]], key: str, *, inverse: bool = False) -> float | None:
    ours, theirs = figures["dcp"][key], figures["litellm"][key]
    top, bottom = (theirs, ours) if inverse else (ours, theirs)
    return round(top / bottom, 2) if bottom > 0 else None


def _meets(dcp: dict[str, float], ratios: dict[str, float | None]) -> dict[str, bool | None]:
    ratio = ratios.get("rps_per_core_dcp_to_litellm")
    return {
        "added_p50_ms": dcp["added_p50_ms"] < TARGETS["added_p50_ms"],
        "added_p99_ms": dcp["added_p99_ms"] < TARGETS["added_p99_ms"],
        "ttft_overhead_p50_ms": dcp["ttft_overhead_p50_ms"] < TARGETS["ttft_overhead_p50_ms"],
        "rps_per_core_ratio": None if ratio is None else ratio >= TARGETS["rps_per_core_ratio"],
    }
