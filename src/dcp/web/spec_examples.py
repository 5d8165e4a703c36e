"""Example request and response bodies for the API reference, built from the OpenAPI schemas."""

from __future__ import annotations

import json
from typing import Any

Schema = dict[str, Any]
_MAX_DEPTH = 5

# Values a person would type, by field name; anything else falls back to its schema's type.
_SAMPLES: dict[str, Any] = {
    "name": "Fatima Al-Saud",
    "email": "fatima@example.sa",
    "organization": "Riyadh AI Lab",
    "phone": "+966500000000",
    "gpu_model": "RTX 4090",
    "gpu_name": "NVIDIA RTX 4090",
    "model": "gemma3-270m",
    "prompt": "What is the capital of Saudi Arabia?",
    "iban": "SA0380000000608010167519",
    "amount_halala": 5000,
    "reason": "bank transfer 0001",
    "reference": "TRX-0001",
    "lease_token": "the-lease-token-of-the-job",
    "job_id": "job-1a2b3c4d",
    "api_key": "dc1-…",
    "message": "OK",
}

# Whole bodies where the required fields alone would not make a useful request.
_REQUESTS: dict[str, Any] = {
    "POST /api/renters/register": {
        "name": "Fatima Al-Saud",
        "email": "fatima@example.sa",
        "organization": "Riyadh AI Lab",
    },
    "POST /api/providers/register": {
        "name": "Riyadh RTX Node",
        "email": "provider@example.com",
        "gpu_model": "RTX 4090",
        "os": "linux",
    },
    "POST /api/providers/heartbeat": {
        "gpu_status": {
            "gpu_name": "NVIDIA RTX 4090",
            "gpu_vram_mib": 24564,
            "gpu_util_pct": 42,
            "temp_c": 61,
            "daemon_version": "1.0.0",
        },
        "provider_hostname": "gpu-host-1",
    },
    "PUT /api/providers/prices": {"llm_inference": 15, "image_generation": 20},
    "POST /api/jobs/submit": {
        "job_type": "llm_inference",
        "duration_minutes": 2,
        "params": {
            "model": "gemma3-270m",
            "prompt": "What is the capital of Saudi Arabia?",
            "max_tokens": 64,
        },
    },
    "POST /v1/chat/completions": {
        "model": "gemma3-270m",
        "messages": [{"role": "user", "content": "What is the capital of Saudi Arabia?"}],
        "max_tokens": 64,
    },
    "POST /v1/completions": {
        "model": "gemma3-270m",
        "prompt": "The capital of Saudi Arabia is",
        "max_tokens": 32,
    },
    "PUT /api/admin/model-prices": {
        "model": "gemma3-270m",
        "input_per_million_halala": 100,
        "output_per_million_halala": 300,
    },
}


def request_example(key: str, operation: Schema, spec: Schema) -> str | None:
    """The JSON body to start from for ``key`` ("METHOD /path"); None when it takes no body."""
    body = operation.get("requestBody")
    if not body:
        return None
    if key in _REQUESTS:
        return _dump(_REQUESTS[key])
    schema = body.get("content", {}).get("application/json", {}).get("schema")
    if schema is None:
        return None
    value = example(schema, spec, required_only=True)
    if value == {} and not body.get("required"):
        return None
    return _dump(value)


def response_example(operation: Schema, spec: Schema) -> tuple[str, str] | None:
    """The first success status and an example of its JSON body, if it answers JSON."""
    for status, answer in sorted(operation.get("responses", {}).items()):
        if not status.startswith("2"):
            continue
        schema = answer.get("content", {}).get("application/json", {}).get("schema")
        value = example(schema, spec, required_only=False) if schema else None
        if value:
            return status, _dump(value)
    return None


def example(schema: Schema, spec: Schema, *, required_only: bool, name: str = "", depth: int = 0) -> Any:
    """One plausible value for ``schema``: its example, default or enum, a sample by name, else by type."""
    schema = _resolve(schema, spec)
    for word in ("example", "const"):
        if word in schema:
            return schema[word]
    if schema.get("default") is not None:
        return schema["default"]
    if schema.get("enum"):
        return schema["enum"][0]
    if name in _SAMPLES and "properties" not in schema:
        return _SAMPLES[name]
    choices = schema.get("anyOf") or schema.get("oneOf") or schema.get("allOf")
    if choices:
        chosen = next((c for c in choices if c.get("type") != "null"), choices[0])
        return example(chosen, spec, required_only=required_only, name=name, depth=depth)
    if depth >= _MAX_DEPTH:
        return None
    return _by_type(schema, spec, required_only=required_only, depth=depth)


def _by_type(schema: Schema, spec: Schema, *, required_only: bool, depth: int) -> Any:
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        required = set(schema.get("required", []))
        return {
            field: example(sub, spec, required_only=required_only, name=field, depth=depth + 1)
            for field, sub in schema.get("properties", {}).items()
            if field in required or not required_only
        }
    if kind == "array":
        item = example(schema.get("items", {}), spec, required_only=required_only, depth=depth + 1)
        return [] if item is None else [item]
    if kind == "integer":
        return int(schema.get("minimum", 1))
    if kind == "number":
        return float(schema.get("minimum", 0.5))
    if kind == "boolean":
        return True
    if kind == "string":
        return _string(schema)
    return None


def _string(schema: Schema) -> str:
    formats = {"date-time": "2026-03-12T09:30:00Z", "date": "2026-03-01", "email": "fatima@example.sa"}
    return formats.get(schema.get("format", ""), "string")


def _resolve(schema: Schema, spec: Schema) -> Schema:
    while "$ref" in schema:
        path = schema["$ref"].removeprefix("#/").split("/")
        target: Any = spec
        for part in path:
            target = target[part]
        schema = target
    return schema


def _dump(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)
