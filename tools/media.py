"""One tool per media task. Each tool's input schema is its task model's own JSON Schema (plus the
request envelope's fields and `wait`/`timeoutSeconds`); nothing about a task is restated here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.tools import Tool
from mcp_types import CallToolResult, ToolAnnotations

from tools.jobs import wait_for_job
from tools.results import JobResult
from tools.submit import SubmitArguments, input_schema
from tools.toolkit import MEDIA_TOOL_TASKS, flat_tool, gateway_of

SUBMITS = ToolAnnotations(
    read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=True
)

_HOW_IT_RUNS = (
    " Check the price with cost_quote first. Returns the job at once; pass wait=true to wait "
    "for the files (with progress). Outputs are URLs, kept 48 hours."
)


@dataclass(frozen=True)
class MediaTool:
    name: str
    title: str
    summary: str  # when to use it and how it is priced

    @property
    def task(self) -> str:
        return MEDIA_TOOL_TASKS[self.name]

    def build(self) -> Tool:
        task = self.task

        async def submit(
            arguments: SubmitArguments, ctx: Context
        ) -> Annotated[CallToolResult, JobResult]:
            gateway = gateway_of(ctx)
            submitted = await gateway.submit(arguments.request_body(task))
            if arguments.wait:
                return await wait_for_job(
                    ctx,
                    gateway,
                    submitted["externalJobId"],
                    timeout_seconds=arguments.timeout_seconds,
                )
            # A submit answer carries the balance left after the hold.
            return JobResult.from_gateway(submitted, submitted).tool_result()

        return flat_tool(
            submit,
            name=self.name,
            title=self.title,
            description=self.summary + _HOW_IT_RUNS,
            annotations=SUBMITS,
            input_schema=input_schema(task),
        )


MEDIA_TOOLS = (
    MediaTool(
        "image_generate",
        "Generate an image",
        "Make an image from a text prompt, optionally steered by reference images. Priced by "
        "output megapixels; highDetail and upscale cost more.",
    ),
    MediaTool(
        "image_edit",
        "Edit an image",
        "Change an existing image (URL or inline) as a prompt says; the output keeps its size. "
        "Priced as a 1-megapixel image; highDetail costs 50% more.",
    ),
    MediaTool(
        "video_generate",
        "Generate a video",
        "Make a video clip from a prompt, or animate a start frame, or extend a previous clip "
        "from its last frames. Priced per second by resolution; extremeQuality costs 50% more. "
        "Takes minutes.",
    ),
    MediaTool(
        "video_combine",
        "Join video clips",
        "Join 2 to 24 video clips (URLs) into one, with their audio, trimming repeated frames "
        "at the joins. Priced per output second; cheap.",
    ),
    MediaTool(
        "video_resize",
        "Resize a video",
        "Rescale a video (URL) to an exact even width and height. Priced per output "
        "megapixel-frame; cheap.",
    ),
    MediaTool(
        "audio_speak",
        "Speak text",
        "Turn text into speech: design a voice from tags, or clone one from reference audio. "
        "Priced per 1,000 characters.",
    ),
    MediaTool(
        "audio_annotate_reference",
        "Transcribe with word timings",
        "Word-timed transcript of an audio clip, aligned to a transcript you give or "
        "transcribed from scratch. Priced per audio minute.",
    ),
    MediaTool(
        "music_create",
        "Compose a song",
        "Compose a song with vocals from style tags and lyrics (ACE-Step). Priced per second "
        "of music.",
    ),
    MediaTool(
        "sound_effect_create",
        "Make a sound effect",
        "Make a sound effect (1 to 30 s) from a text prompt. Priced per second.",
    ),
    MediaTool(
        "model3d_generate",
        "Make a 3D model",
        "Make a textured 3D model (GLB) from one image of an object. Priced per model by "
        "qualityPreset.",
    ),
)


def tools() -> list[Tool]:
    return [tool.build() for tool in MEDIA_TOOLS]
