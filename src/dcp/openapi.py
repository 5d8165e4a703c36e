"""The OpenAPI document: every error documented as ``{"error": ...}``, served as JSON and YAML."""

from __future__ import annotations

from typing import Any

import yaml
from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response

from dcp import __version__

router = APIRouter(prefix="/docs", include_in_schema=False)
_ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}
_V1_ERROR_REF = {"$ref": "#/components/schemas/V1ErrorBody"}


def build_spec(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema:
        return app.openapi_schema
    spec = get_openapi(
        title="DCP API",
        version=__version__,
        description=(
            "GPU compute marketplace. Every route is served under `/api` and under the `/api/dc1` alias. "
            'Failures answer `{"error": "message"}`; amounts are integer halala (1/100 SAR).'
        ),
        routes=app.routes,
    )
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault(
        "ErrorBody", {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}}
    )
    for path, methods in spec.get("paths", {}).items():
        for operation in methods.values():
            _document_errors(operation, _V1_ERROR_REF if path.startswith("/v1") else _ERROR_REF)
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    app.openapi_schema = spec
    return spec


def _document_errors(operation: dict[str, Any], error_ref: dict[str, str]) -> None:
    """Validation failures answer 400 with ErrorBody here, never FastAPI's 422 shape."""
    responses: dict[str, Any] = operation.setdefault("responses", {})
    had_validation = responses.pop("422", None) is not None
    if had_validation or operation.get("parameters") or operation.get("requestBody"):
        responses.setdefault(
            "400",
            {
                "description": "Invalid request: the message names the field",
                "content": {"application/json": {"schema": error_ref}},
            },
        )
    if operation.get("requestBody"):
        responses.setdefault(
            "413",
            {
                "description": "Request body too large",
                "content": {"application/json": {"schema": error_ref}},
            },
        )


@router.get("/openapi.json")
async def openapi_json(request: Request) -> JSONResponse:
    return JSONResponse(build_spec(request.app))


@router.get("/openapi.yaml")
async def openapi_yaml(request: Request) -> Response:
    text = yaml.safe_dump(build_spec(request.app), sort_keys=False, allow_unicode=True)
    return Response(text, media_type="application/yaml")
