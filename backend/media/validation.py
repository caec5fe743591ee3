"""Parse a `POST /api/v1/media/jobs` body into its task model, or fail with one clear 400.

Every failure is a `BadRequest` whose message names the first offending field by its wire path
(`input.referenceImages[2].dataBase64`) and rule, with all of them in
`details = {"errors": [{"field", "rule", "message"}, ...]}`. Rules are named after the JSON Schema
keyword they enforce (`minimum`, `enum`, `pattern`, ...) or, for the spec's prose rules, after the
rule (`width_height_together`, `ltx_frame_count`, ...). Nothing from pydantic (doc URLs, class
names) reaches the client.
"""

from __future__ import annotations

import difflib
import json
import types
from typing import Any, Union, cast, get_args, get_origin

from pydantic import ValidationError
from pydantic_core import ErrorDetails
from typing_extensions import TypeAliasType

from backend.http.bodies import field_path
from backend.http.errors import BadRequest
from backend.media.tasks import (
    TASK_INPUT_MODELS,
    TASK_MODELS,
    UNION_BRANCH_TAGS,
    MediaTask,
    WireModel,
)

_VALID_TASKS = ", ".join(TASK_MODELS)

_JSON_TYPE_NAMES = {
    "string_type": "a string",
    "int_type": "an integer",
    "float_type": "a number",
    "bool_type": "a boolean",
    "list_type": "an array",
    "model_type": "an object",
    "model_attributes_type": "an object",
    "dict_type": "an object",
}
_KEYWORD_RULES = {
    "missing": "required",
    "extra_forbidden": "unknown_field",
    "greater_than_equal": "minimum",
    "less_than_equal": "maximum",
    "multiple_of": "multipleOf",
    "string_too_short": "minLength",
    "string_too_long": "maxLength",
    "string_pattern_mismatch": "pattern",
    "too_short": "minItems",
    "too_long": "maxItems",
    "literal_error": "enum",
}


def parse_media_job(body: object) -> MediaTask:
    if not isinstance(body, dict):
        raise _bad([_error("(body)", "type", "the request body must be a JSON object")])
    if "task" not in body:
        raise _bad([_error("task", "required", f"is required; one of: {_VALID_TASKS}")])
    task = body["task"]
    if not isinstance(task, str):
        raise _bad([_error("task", "type", f"must be a string, one of: {_VALID_TASKS}")])
    model = TASK_MODELS.get(task)
    if model is None:
        raise _bad(
            [_error("task", "enum", f"unknown task {_shown(task)}; valid tasks: {_VALID_TASKS}")]
        )
    try:
        parsed = model.model_validate(_integral_floats_as_ints(body), by_alias=True, by_name=False)
    except ValidationError as exc:
        raise _bad([_describe(error, model, task) for error in exc.errors()]) from None
    return cast(MediaTask, parsed)


def _integral_floats_as_ints(value: Any) -> Any:
    # JSON Schema counts 1024.0 as an integer (Python clients send it after float math); the
    # models are strict, so the one translation happens here, before validation.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: _integral_floats_as_ints(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_integral_floats_as_ints(item) for item in value]
    return value


def _describe(error: ErrorDetails, task_model: type[WireModel], task: str) -> dict[str, str]:
    location = [part for part in error["loc"] if part not in UNION_BRANCH_TAGS]
    context = error.get("ctx") or {}
    kind = error["type"]
    if isinstance(context.get("field"), str):
        location.append(context["field"])
    path = field_path(tuple(location)) or "(body)"
    if kind in _JSON_TYPE_NAMES:
        return _error(path, "type", f"must be {_JSON_TYPE_NAMES[kind]}, got {_json_type(error)}")
    rule = _KEYWORD_RULES.get(kind, kind)
    if kind == "missing":
        return _error(path, rule, "is required")
    if kind == "extra_forbidden":
        return _error(path, rule, _unknown_field_message(task_model, location, task))
    bound = {
        "greater_than_equal": ("must be at least", "ge"),
        "less_than_equal": ("must be at most", "le"),
        "multiple_of": ("must be a multiple of", "multiple_of"),
    }.get(kind)
    if bound is not None:
        text, key = bound
        return _error(path, rule, f"{text} {context[key]}, got {_shown(error['input'])}")
    if kind in ("string_too_short", "string_too_long"):
        limit = "at least" if kind == "string_too_short" else "at most"
        count = len(error["input"]) if isinstance(error["input"], str) else "?"
        length = context.get("min_length", context.get("max_length"))
        return _error(path, rule, f"must be {limit} {_plural(length, 'character')}, got {count}")
    if kind in ("too_short", "too_long"):
        limit = "at least" if kind == "too_short" else "at most"
        length = context.get("min_length", context.get("max_length"))
        actual = context["actual_length"]
        return _error(path, rule, f"must have {limit} {_plural(length, 'item')}, got {actual}")
    if kind == "string_pattern_mismatch":
        return _error(path, rule, f"must match {context['pattern']}, got {_shown(error['input'])}")
    if kind == "literal_error":
        return _error(
            path, rule, f"must be one of {context['expected']}, got {_shown(error['input'])}"
        )
    return _error(path, rule, error["msg"])


def _unknown_field_message(task_model: type[WireModel], location: list[Any], task: str) -> str:
    name = str(location[-1])
    parent = location[:-1]
    if not parent and name in (_wire_fields_at(TASK_INPUT_MODELS[task], []) or []):
        return f"is not an envelope field; {task} parameters go inside input (input.{name})"
    allowed = _wire_fields_at(task_model, parent)
    if allowed is None:
        return "is not a known field"
    by_shape = {candidate.lower().replace("_", ""): candidate for candidate in allowed}
    guess = by_shape.get(name.lower().replace("_", "").replace("-", "")) or next(
        iter(difflib.get_close_matches(name, allowed, n=1)), None
    )
    if guess is not None:
        return f"is not a known field; did you mean {guess}?"
    return f"is not a known field; allowed: {', '.join(allowed)}"


def _wire_fields_at(model: type[WireModel], location: list[Any]) -> list[str] | None:
    """The wire names accepted at `location` below `model`, or None where it cannot tell."""
    current: type[WireModel] = model
    for part in location:
        if isinstance(part, int):
            continue
        info = next(
            (f for name, f in current.model_fields.items() if (f.alias or name) == part), None
        )
        if info is None:
            return None
        inner = _models_in(info.annotation)
        if len(inner) != 1:
            return None
        current = inner[0]
    return [info.alias or name for name, info in current.model_fields.items()]


def _models_in(annotation: Any) -> list[type[WireModel]]:
    if isinstance(annotation, TypeAliasType):
        return _models_in(annotation.__value__)
    if isinstance(annotation, type) and issubclass(annotation, WireModel):
        return [annotation]
    origin = get_origin(annotation)
    if origin is None:
        return []
    arguments = get_args(annotation)
    if origin in (Union, types.UnionType, list):
        return [model for argument in arguments for model in _models_in(argument)]
    # Annotated[T, ...]: the type is the first argument.
    return _models_in(arguments[0]) if arguments else []


def _json_type(error: ErrorDetails) -> str:
    value = error["input"]
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return f"the number {_shown(value)}"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False) if isinstance(value, str | int | float) else "…"
    return text if len(text) <= 60 else f"{text[:57]}…"


def _plural(count: object, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _error(field: str, rule: str, message: str) -> dict[str, str]:
    return {"field": field, "rule": rule, "message": message}


def _bad(errors: list[dict[str, str]]) -> BadRequest:
    first = errors[0]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return BadRequest(f"{first['field']}: {first['message']}{more}", details={"errors": errors})
