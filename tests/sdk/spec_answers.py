"""Answers made from the OpenAPI spec that note each field the SDK reads from them, and which code read it."""

from __future__ import annotations

import re
import sys
import types
from dataclasses import dataclass
from typing import Any, Literal, Union, get_args, get_origin

import httpx

ANY_JSON = frozenset({"integer", "number", "string", "boolean", "null", "object", "array"})
_PYTHON_JSON = {
    bool: {"boolean"},
    int: {"integer"},
    float: {"number", "integer"},
    str: {"string"},
    type(None): {"null"},
    dict: {"object"},
    list: {"array"},
}


@dataclass(frozen=True)
class Read:
    """One field the SDK read from an answer: ``body[key]`` (``indexed``) or ``body.get(key)``."""

    where: str
    key: str
    indexed: bool
    reader: str
    schema: dict[str, Any] | None
    required: bool


class Spec:
    """The OpenAPI document, with what the checks ask of it."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.reads: list[Read] = []
        self._paths = [
            (template, re.compile("^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template)) + "$"))
            for template in document["paths"]
        ]

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            schema = self.document["components"]["schemas"][schema["$ref"].split("/")[-1]]
        return schema

    def json_types(self, schema: dict[str, Any]) -> frozenset[str]:
        """The JSON types a value of the schema may have."""
        schema = self.resolve(schema)
        for union in ("anyOf", "oneOf"):
            if union in schema:
                return frozenset().union(*(self.json_types(option) for option in schema[union]))
        if "type" in schema:
            return frozenset([schema["type"]] if isinstance(schema["type"], str) else schema["type"])
        if "enum" in schema:
            return frozenset().union(*(json_types_of(value) for value in schema["enum"]))
        return ANY_JSON

    def operation(self, method: str, path: str) -> tuple[str, dict[str, Any]]:
        """The path's template and the operation for the method; AssertionError if the spec has neither."""
        templates = [template for template, pattern in self._paths if pattern.match(path)]
        assert templates, f"{method} {path}: no such path in the spec"
        exact = [template for template in templates if "{" not in template] or templates
        item = self.document["paths"][exact[0]]
        assert method.lower() in item, f"{method} {path}: the spec's {exact[0]} has only {sorted(item)}"
        return exact[0], item[method.lower()]

    def parameters(self, operation: dict[str, Any], where: str) -> set[str]:
        return {p["name"].lower() for p in operation.get("parameters", []) if p["in"] == where}

    def content(self, operation: dict[str, Any], status: int) -> dict[str, Any]:
        response = operation["responses"].get(str(status))
        assert response is not None, f"{operation['operationId']} documents no {status}"
        found: dict[str, Any] = response.get("content", {})
        return found

    def answer(self, label: str, operation: dict[str, Any], status: int) -> httpx.Response:
        """A response of that status whose body is made from its documented schema."""
        content = self.content(operation, status)
        assert "application/json" in content, f"{label} {status}: no JSON body documented"
        return SpecResponse(status, self.sample(content["application/json"]["schema"], f"{label} {status}"))

    def sample(self, schema: dict[str, Any], where: str) -> Any:
        """A value of the schema; an object with properties is an Answer that notes the SDK's reads."""
        schema = self.resolve(schema)
        for union in ("anyOf", "oneOf"):
            if union in schema:
                options = [o for o in schema[union] if self.json_types(o) != {"null"}] or schema[union]
                return self.sample(options[0], where)
        if "enum" in schema:
            return schema["enum"][0]
        kind = schema.get("type")
        if kind == "object" and "properties" in schema:
            return Answer(self, schema, where)
        if kind == "array":
            return [self.sample(schema.get("items", {}), f"{where}[]")]
        return {"object": {}, "string": "x", "integer": 1, "number": 1.5, "boolean": True}.get(kind)


class Answer(dict[str, Any]):
    """A body that holds a sample of every documented field and notes each one the SDK reads."""

    def __init__(self, spec: Spec, schema: dict[str, Any], where: str) -> None:
        self._spec, self._schema, self._where = spec, schema, where
        properties = schema["properties"]
        super().__init__({k: spec.sample(v, f"{where} .{k}") for k, v in properties.items()})

    def __getitem__(self, key: str) -> Any:
        self._note(key, indexed=True)
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:
        self._note(key, indexed=False)
        return super().get(key, default)

    def _note(self, key: str, *, indexed: bool) -> None:
        reader = sys._getframe(2).f_code.co_qualname
        schema = self._schema["properties"].get(key)
        required = key in self._schema.get("required", [])
        self._spec.reads.append(Read(self._where, key, indexed, reader, schema, required))


class SpecResponse(httpx.Response):
    """An httpx response whose ``json()`` is the Answer itself, so the SDK's reads reach it."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(status)
        self._body = body

    def json(self, **_: Any) -> Any:
        return self._body


def json_types_of(value: Any) -> frozenset[str]:
    for python, names in _PYTHON_JSON.items():
        if type(value) is python:
            return frozenset(names - {"integer"} if python is float else names)
    raise AssertionError(f"{value!r} is not a JSON value")


def annotation_json_types(annotation: Any) -> frozenset[str]:
    """The JSON types a Python annotation holds (``int | None`` holds integer and null)."""
    if annotation is Any:
        return ANY_JSON
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        return frozenset().union(*(annotation_json_types(arg) for arg in get_args(annotation)))
    if origin is Literal:
        return frozenset().union(*(json_types_of(value) for value in get_args(annotation)))
    base = origin or annotation
    if isinstance(base, type) and issubclass(base, dict):  # a TypedDict is a dict at runtime
        return frozenset({"object"})
    assert base in _PYTHON_JSON, f"no JSON type for {annotation!r}"
    return frozenset(_PYTHON_JSON[base])
