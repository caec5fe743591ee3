"""The arguments every media tool takes: its task's own fields, the request envelope's
(idempotencyKey, ...), and `wait`/`timeoutSeconds`; and how they become a gateway request."""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import ConfigDict, Field

from backend.media.tasks import TASK_INPUT_MODELS, TASK_MODELS
from tools.toolkit import Arguments

DEFAULT_WAIT_SECONDS = 120
MAX_WAIT_SECONDS = 600

# The envelope's own fields (idempotencyKey, ...) travel next to `input`, not inside it.
_ENVELOPE_WRAPPERS = ("task", "input")


class SubmitArguments(Arguments):
    """What every media tool adds to its task's fields. The task's fields are kept as extras and
    passed to the gateway untouched: it validates them with the task model and answers a mistake
    with the field and the rule, exactly as it answers a REST call."""

    model_config = ConfigDict(extra="allow")

    wait: bool = Field(
        default=False,
        description="Wait for the job to finish (sending progress notifications) instead of "
        "returning at once.",
    )
    timeout_seconds: int = Field(
        default=DEFAULT_WAIT_SECONDS,
        ge=1,
        le=MAX_WAIT_SECONDS,
        description="With wait: the longest wait before returning the job still running.",
    )

    def request_body(self, task: str) -> dict[str, Any]:
        """The `POST /api/v1/media/jobs` body (and, without the envelope, a quote's)."""
        envelope_fields = _envelope_properties(task)
        given = self.model_extra or {}
        return {
            "task": task,
            "input": {k: v for k, v in given.items() if k not in envelope_fields},
            **{k: v for k, v in given.items() if k in envelope_fields},
        }


@cache
def _envelope_properties(task: str) -> dict[str, Any]:
    properties: dict[str, Any] = TASK_MODELS[task].model_json_schema(by_alias=True)["properties"]
    return {k: v for k, v in properties.items() if k not in _ENVELOPE_WRAPPERS}


def input_schema(task: str) -> dict[str, Any]:
    """The task input model's schema, with the envelope's fields and the submit options added."""
    schema = TASK_INPUT_MODELS[task].model_json_schema(by_alias=True)
    options = {
        name: {k: v for k, v in spec.items() if k != "title"}
        for name, spec in SubmitArguments.model_json_schema(by_alias=True)["properties"].items()
    }
    added = {**_envelope_properties(task), **options}
    if clash := added.keys() & schema["properties"].keys():
        raise ValueError(f"{task} has fields named like the tool's own arguments: {clash}")
    return {**schema, "properties": {**schema["properties"], **added}}
