"""Structured tool results: pydantic models (they become each tool's `outputSchema`) and how a
gateway answer turns into a `CallToolResult` with the produced files as resource links."""

from __future__ import annotations

from typing import Any, Literal

from mcp_types import CallToolResult, ContentBlock, ResourceLink, TextContent
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from tools.gateway_client import usd
from tools.toolkit import TASK_TOOLS

JobStatus = Literal["queued", "running", "succeeded", "failed", "canceled"]
TERMINAL: tuple[JobStatus, ...] = ("succeeded", "failed", "canceled")


class Result(BaseModel):
    model_config = ConfigDict(populate_by_name=True, alias_generator=to_camel)

    def call_result(self, links: list[ResourceLink] | None = None) -> CallToolResult:
        """The JSON as text too (for clients that ignore `structuredContent`), then the links."""
        structured = self.model_dump(mode="json", by_alias=True)
        text = self.model_dump_json(by_alias=True)
        content: list[ContentBlock] = [TextContent(type="text", text=text), *(links or [])]
        return CallToolResult(content=content, structured_content=structured)


class OutputFile(Result):
    name: str
    url: str = Field(description="Direct download URL, valid for 48 hours after the job ends.")
    mime_type: str
    size_bytes: int


class JobProgress(Result):
    percent: int = Field(ge=0, le=100)
    message: str | None = None


class JobError(Result):
    code: str
    message: str


class JobResult(Result):
    job_id: str = Field(description="Pass to job_get, job_wait or job_cancel.")
    task: str = Field(description="The gateway task, e.g. video.combine.")
    tool: str = Field(description="The tool that submits this task.")
    status: JobStatus
    progress: JobProgress
    usd_charged_micros: int = Field(
        description="What the job costs in USD micros (1 USD = 1,000,000): held while queued or "
        "running, charged on success, 0 when it failed or was canceled."
    )
    usd_charged: str = Field(description="usdChargedMicros in dollars, e.g. $0.04.")
    usd_available_micros: int = Field(description="Balance left to spend, in USD micros.")
    usd_available: str = Field(description="usdAvailableMicros in dollars.")
    estimated_duration_seconds: float | None = None
    outputs: list[OutputFile] = Field(
        default_factory=list, description="The produced files (also sent as resource links)."
    )
    input_adjustments: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Every change the gateway made to the arguments before running them.",
    )
    error: JobError | None = None
    next: str = Field(description="What to do next.")

    @classmethod
    def from_gateway(
        cls, job: dict[str, Any], balance: dict[str, Any], *, timed_out: bool = False
    ) -> JobResult:
        """`job` is a submit or status answer of `/api/v1/media/jobs`; `balance` one of
        `/api/v1/balance` (a submit answer carries both)."""
        job_id, status = job["externalJobId"], job["status"]
        charged = job["billing"]["usdChargedMicros"]
        progress = job.get("progress") or {"percent": 0, "message": status}
        outputs = [
            OutputFile(
                name=item["name"],
                url=item["url"],
                mime_type=item["mimeType"],
                size_bytes=item["sizeBytes"],
            )
            for item in job.get("outputFiles") or []
        ]
        error = job.get("error")
        return cls(
            job_id=job_id,
            task=job["task"],
            tool=TASK_TOOLS[job["task"]],
            status=status,
            progress=JobProgress(percent=progress["percent"], message=progress["message"]),
            usd_charged_micros=charged,
            usd_charged=usd(charged),
            usd_available_micros=balance["usdAvailableMicros"],
            usd_available=usd(balance["usdAvailableMicros"]),
            estimated_duration_seconds=job.get("estimatedDurationSeconds"),
            outputs=outputs,
            input_adjustments=job.get("inputAdjustments") or [],
            error=JobError(code=error["code"], message=error["message"]) if error else None,
            next=_next_step(job_id, status, timed_out=timed_out, expired=job.get("outputsExpired")),
        )

    def links(self) -> list[ResourceLink]:
        return [
            ResourceLink(
                type="resource_link",
                uri=item.url,
                name=item.name,
                mime_type=item.mime_type,
                size=item.size_bytes,
            )
            for item in self.outputs
        ]

    def tool_result(self) -> CallToolResult:
        return self.call_result(self.links())


def _next_step(job_id: str, status: str, *, timed_out: bool, expired: bool | None) -> str:
    if status == "succeeded":
        if expired:
            return "The outputs were deleted after 72 hours; submit the job again to remake them."
        return "Done. Download the outputs from their URLs (valid 48 hours) or show them."
    if status == "failed":
        return "The job failed and nothing was charged; read error, fix the input and resubmit."
    if status == "canceled":
        return "The job was canceled and nothing was charged."
    waited = "Still running after the wait timeout. " if timed_out else ""
    return f"{waited}Call job_wait with jobId {job_id} to wait for the outputs."
