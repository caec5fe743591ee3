"""Parse JSON bodies into pydantic models; every failure is a 400 naming the field and rule."""

from __future__ import annotations

import json
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from backend.http.errors import BadRequest

Model = TypeVar("Model", bound=BaseModel)


def field_path(location: tuple[int | str, ...]) -> str:
    path = ""
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def describe_errors(exc: ValidationError) -> list[dict[str, Any]]:
    errors = []
    for error in exc.errors(include_url=False, include_input=False):
        message = error["msg"].removeprefix("Value error, ")
        errors.append(
            {
                "field": field_path(error["loc"]) or "(body)",
                "rule": error["type"],
                "message": message,
            }
        )
    return errors


def validation_failed(exc: ValidationError) -> BadRequest:
    errors = describe_errors(exc)
    first = errors[0]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return BadRequest(f"{first['field']}: {first['message']}{more}", details={"errors": errors})


async def read_json(request: Request, *, required: bool = True) -> Any:
    raw = await request.body()
    if not raw.strip():
        if required:
            raise BadRequest("Request body is empty; send a JSON object.", code="BODY_REQUIRED")
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        pass  # maybe JSON that orjson refuses (integers beyond 64 bits, lone surrogates)
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadRequest(f"Request body is not valid JSON: {exc}", code="INVALID_JSON") from exc


async def parse_body(request: Request, model: type[Model], *, required: bool = True) -> Model:
    data = await read_json(request, required=required)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise BadRequest("Request body must be a JSON object.", code="INVALID_JSON")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_failed(exc) from exc
