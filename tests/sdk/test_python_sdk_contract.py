"""The Python SDK against the server's OpenAPI spec: every call it makes and every field its models read."""

from __future__ import annotations

import dataclasses
import inspect
import itertools
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints, is_typeddict

import dc1
import pydantic
import pytest
from dc1 import _async_client, _client, _core, _exceptions, _models, _operations, _streaming
from dc1._core import Call, Sleep

from dcp.app import create_app
from dcp.config import Settings
from dcp.jobs.params import PARAMS
from dcp.jobs.schemas import JobType as ServerJobType
from tests.conftest import ADMIN_TOKEN, SECRET
from tests.sdk.spec_answers import Spec, annotation_json_types

# Arguments an operation's annotation cannot choose: the key's role picks the path, so both are tried.
NAMED_ARGUMENTS: dict[str, tuple[Any, ...]] = {
    "role": ("renter", "provider"),
    "job_id": ("job-1",),
    "job_type": ("llm_inference",),
}
# ``raw`` sends whatever Call the caller names (``client.request``): it has no path of its own.
PATHLESS = {"raw"}
MAX_STEPS = 20


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> Spec:
    home = tmp_path_factory.mktemp("spec")
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{home / 'dcp.db'}",
        secret_key=SECRET,
        admin_token=ADMIN_TOKEN,
        data_dir=home,
    )
    return Spec(create_app(settings).openapi())  # what GET /docs/openapi.json serves


def operations() -> Iterator[tuple[str, Callable[..., Any]]]:
    for name, function in inspect.getmembers(_operations, inspect.isfunction):
        returns = str(inspect.signature(function).return_annotation)
        ours = function.__module__ == _operations.__name__ and not name.startswith("_")
        if ours and returns.startswith("Operation[") and name not in PATHLESS:
            yield name, function


def argument_sets(function: Callable[..., Any]) -> list[dict[str, Any]]:
    hints = get_type_hints(function)
    names = [name for name in inspect.signature(function).parameters]
    choices = [NAMED_ARGUMENTS.get(name) or (sample_value(hints[name]),) for name in names]
    return [dict(zip(names, chosen, strict=True)) for chosen in itertools.product(*choices)]


def sample_value(annotation: Any) -> Any:
    """A Python value of the annotation, with every key of a TypedDict filled in."""
    origin = get_origin(annotation)
    if origin is Literal:
        return get_args(annotation)[0]
    if origin in (Union, types.UnionType):
        return sample_value(next(arg for arg in get_args(annotation) if arg is not type(None)))
    if is_typeddict(annotation):
        return {key: sample_value(hint) for key, hint in get_type_hints(annotation).items()}
    if origin in (dict, Mapping) or annotation in (dict, Mapping):
        return {}
    return {bool: True, int: 1, float: 1.0, str: "x", list: []}[origin or annotation]


def drive(spec: Spec, name: str, operation: Any, choose: dict[str, int]) -> list[tuple[str, Call]]:
    """Runs an operation against answers made from the spec; returns each call with its path's template."""
    calls: list[tuple[str, Call]] = []
    reply: Any = None
    try:
        for _ in range(MAX_STEPS):
            step = operation.send(reply)
            if isinstance(step, Sleep):
                reply = None
                continue
            template, found = spec.operation(step.method, step.path)
            calls.append((template, step))
            status = choose.get(template, readable_statuses(found, step)[0])
            reply = spec.answer(f"{name}: {step.method} {template}", found, status)
        raise AssertionError(f"{name} made more than {MAX_STEPS} steps")
    except StopIteration:
        return calls
    except (dc1.DC1Error, ValueError):
        return calls  # the operation ended as it should for that answer (a deadline, a wrong job type)


def readable_statuses(found: dict[str, Any], call: Call) -> list[int]:
    documented = sorted(int(status) for status in found["responses"] if status.isdigit())
    return [status for status in documented if 200 <= status < 300 or status in call.allow]


@pytest.fixture(scope="module")
def explored(spec: Spec) -> dict[str, list[tuple[str, Call]]]:
    """Every operation, with every status it reads itself (a job's output: 200 and 202)."""
    made: dict[str, list[tuple[str, Call]]] = {}
    for name, function in operations():
        for arguments in argument_sets(function):
            pending: list[dict[str, int]] = [{}]
            tried: set[frozenset[tuple[str, int]]] = set()
            while pending:
                choose = pending.pop()
                tried.add(frozenset(choose.items()))
                calls = drive(spec, name, function(**arguments), choose)
                made.setdefault(name, []).extend(calls)
                for template, call in calls:
                    for status in readable_statuses(spec.operation(call.method, call.path)[1], call)[1:]:
                        option = {**choose, template: status}
                        if frozenset(option.items()) not in tried:
                            pending.append(option)
    return made


class TestCalls:
    def test_every_operation_calls_a_path_and_method_the_spec_has(self, explored) -> None:
        assert set(explored) == {name for name, _ in operations()}
        assert all(explored.values()), [name for name, calls in explored.items() if not calls]

    def test_query_header_and_body_names_are_the_operations(self, spec: Spec, explored) -> None:
        for name, calls in explored.items():
            for template, call in calls:
                found = spec.operation(call.method, call.path)[1]
                assert set(call.params or {}) <= spec.parameters(found, "query"), (name, template)
                assert {h.lower() for h in call.headers or {}} <= spec.parameters(found, "header"), name
                if call.json is not None:
                    check_body(spec, name, found, call.json)

    def test_the_event_stream_is_documented(self, spec: Spec) -> None:
        plan = _streaming.plan("job-1", timeout=None)
        found = spec.operation("GET", plan.path)[1]
        assert set(plan.request(plan.heartbeat())["params"]) <= spec.parameters(found, "query")
        assert "text/event-stream" in spec.content(found, 200)


def check_body(spec: Spec, name: str, found: dict[str, Any], body: dict[str, Any]) -> None:
    schema = spec.resolve(found["requestBody"]["content"]["application/json"]["schema"])
    for key, value in body.items():
        assert key in schema["properties"], f"{name} sends {key!r}; the spec's body has no such field"
        allowed = spec.json_types(schema["properties"][key])
        assert annotation_json_types(type(value)) & allowed, (
            f"{name} sends {key}={value!r}, not {sorted(allowed)}"
        )


class TestModels:
    def test_every_field_read_is_documented_and_required_when_indexed(self, spec: Spec, explored) -> None:
        assert spec.reads
        for read in spec.reads:
            assert read.schema is not None, (
                f"{read.reader} reads {read.key!r} from {read.where}: undocumented"
            )
            if read.indexed:
                assert read.required, f"{read.reader} indexes {read.key!r} in {read.where}: not required"

    def test_model_fields_hold_the_documented_types(self, spec: Spec, explored) -> None:
        checked = set()
        for read in spec.reads:
            model = getattr(_models, read.reader.split(".")[0], None)
            if read.schema is None or not dataclasses.is_dataclass(model):
                continue
            hints = get_type_hints(model)
            if read.key not in hints:
                continue
            documented = spec.json_types(read.schema) | (set() if read.required else {"null"})
            held = annotation_json_types(hints[read.key])
            assert documented <= held, (
                f"{model.__name__}.{read.key} holds {held}; {read.where} has {documented}"
            )
            checked.add(model.__name__)
        parsed = {
            name for name, cls in vars(_models).items() if inspect.isclass(cls) and hasattr(cls, "from_api")
        }
        assert parsed <= checked, f"models never parsed from an answer: {parsed - checked}"

    def test_a_failed_jobs_answer_carries_what_job_failed_error_reads(self, spec: Spec) -> None:
        found = spec.operation("GET", "/api/jobs/job-1/output")[1]
        error = _core.error_for(spec.answer("output", found, 410))
        assert isinstance(error, _exceptions.JobFailedError) and error.refunded_halala == 1


class TestSubmitParams:
    """``jobs.submit`` takes one TypedDict per job type: the server's params model, key for key."""

    @pytest.mark.parametrize("submit", [_client.Jobs.submit, _async_client.AsyncJobs.submit])
    def test_each_overload_takes_its_job_types_params(self, submit: Callable[..., Any]) -> None:
        covered = set()
        for overload in typing.get_overloads(submit):
            hints = get_type_hints(overload, vars(inspect.getmodule(submit)) | {"Unpack": typing.Unpack})
            canonical = {
                pydantic.TypeAdapter(ServerJobType).validate_python(t) for t in get_args(hints["job_type"])
            }
            assert len(canonical) == 1, f"{hints['job_type']} names several job types"
            job_type = canonical.pop()
            compare_params(hints["params"], PARAMS[job_type])
            covered.add(job_type)
        assert covered == set(PARAMS)

    def test_submit_options_are_fields_of_the_submit_body(self, spec: Spec) -> None:
        found = spec.operation("POST", "/api/jobs/submit")[1]
        options = sample_value(dc1.SubmitOptions)
        options.pop("idempotency_key")
        body = {"job_type": "llm_inference", "params": {}, "duration_minutes": 1, **options}
        check_body(spec, "jobs.submit", found, body)


def compare_params(typed: Any, model: type[pydantic.BaseModel]) -> None:
    hints = get_type_hints(typed)
    schema = model.model_json_schema()
    server = Spec({"paths": {}, "components": {"schemas": schema.get("$defs", {})}})
    assert set(hints) == set(model.model_fields), (
        f"{typed.__name__} differs from the server's {model.__name__}"
    )
    required = {name for name, field in model.model_fields.items() if field.is_required()}
    assert typed.__required_keys__ == required, f"{typed.__name__}: required keys differ"
    for key, hint in hints.items():
        documented = server.json_types(schema["properties"][key])
        assert documented <= annotation_json_types(hint), (
            f"{typed.__name__}.{key}: the server takes {sorted(documented)}"
        )
