"""What the tool modules share: flat pydantic arguments, the gateway from the server lifespan, and
the one list of media tools."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase
from mcp_types import ToolAnnotations
from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from tools.gateway_client import API_KEY_MISSING, GatewayCallError, GatewayClient

# Media tool name -> the gateway task it submits. The one place the two vocabularies meet.
MEDIA_TOOL_TASKS: dict[str, str] = {
    "image_generate": "image.generate",
    "image_edit": "image.edit",
    "video_generate": "video.generate",
    "video_combine": "video.combine",
    "video_resize": "video.resize",
    "audio_speak": "audio.speak",
    "audio_annotate_reference": "audio.annotation.reference",
    "music_create": "ace.step.create",
    "sound_effect_create": "moss.sound.effect",
    "model3d_generate": "trellis.generate",
}
TASK_TOOLS: dict[str, str] = {task: tool for tool, task in MEDIA_TOOL_TASKS.items()}

# Tools that only read the caller's own account: no side effect, same answer when repeated.
READ_ONLY = ToolAnnotations(
    read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False
)


class Arguments(BaseModel):
    """Base of every tool's arguments: camelCase names like the task models, no unknown fields."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, alias_generator=to_camel)


def gateway_of(ctx: Context) -> GatewayClient:
    """The `GatewayClient` the server lifespan opened (see `server.mcp_server.build_server`)."""
    gateway = ctx.request_context.lifespan_context
    if not isinstance(gateway, GatewayClient):
        raise TypeError("the MCP server's lifespan must yield its GatewayClient")
    return gateway


def flat_tool(
    fn: Callable[..., Any],
    *,
    name: str,
    title: str,
    description: str,
    annotations: ToolAnnotations,
    input_schema: dict[str, Any] | None = None,
) -> Tool:
    """A tool whose one `Arguments` parameter is spread flat over the input schema.

    The SDK nests a pydantic parameter under its name (`{"arguments": {...}}`); models call tools
    more reliably with flat arguments, and the media tools must publish their task model's own
    fields. `input_schema` replaces the model's schema where the tool publishes more than it
    parses (the media tools pass the task's fields through to the gateway, which validates them).
    """
    tool = Tool.from_function(
        fn,
        name=name,
        title=title,
        description=description,
        annotations=annotations,
        structured_output=True,
    )
    (parameter, field), *others = tool.fn_metadata.arg_model.model_fields.items()
    model = field.annotation
    if others or not (isinstance(model, type) and issubclass(model, Arguments)):
        raise TypeError(f"{name}: a flat tool takes one Arguments parameter (and ctx)")

    def dump_one_level(self: BaseModel) -> dict[str, Any]:
        return {parameter: self}

    # The SDK validates the call's arguments with `arg_model` and passes the function what
    # `model_dump_one_level` returns: here, the validated arguments model itself.
    flat = type(
        model.__name__,
        (model, ArgModelBase),
        {"model_dump_one_level": dump_one_level, "__module__": model.__module__},
    )
    if tool.context_kwarg is None:
        raise TypeError(f"{name}: a flat tool takes a ctx: Context parameter")
    return tool.model_copy(
        update={
            "fn": offering_sign_in(tool.fn, tool.context_kwarg),
            "parameters": input_schema or model.model_json_schema(by_alias=True),
            "fn_metadata": tool.fn_metadata.model_copy(update={"arg_model": flat}),
        }
    )


def offering_sign_in(
    fn: Callable[..., Awaitable[Any]], context_kwarg: str
) -> Callable[..., Awaitable[Any]]:
    """`fn`, letting the server offer a sign-in when it fails for want of any key at all."""

    async def call(**kwargs: Any) -> Any:
        try:
            return await fn(**kwargs)
        except GatewayCallError as exc:
            if exc.code == API_KEY_MISSING:
                ctx = kwargs[context_kwarg]
                await gateway_of(ctx).offer_sign_in(ctx)
            raise

    return call
