"""Job tools: cost_quote, job_get, job_wait, job_cancel, jobs_list; and `killa://jobs/{jobId}`."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ToolError
from mcp.server.mcpserver.tools import Tool
from mcp_types import CallToolResult, ToolAnnotations
from pydantic import Field, ValidationError

from tools.gateway_client import GatewayCallError, GatewayClient, usd
from tools.results import TERMINAL, JobProgress, JobResult, JobStatus, OutputFile, Result
from tools.submit import DEFAULT_WAIT_SECONDS, MAX_WAIT_SECONDS, SubmitArguments
from tools.toolkit import (
    MEDIA_TOOL_TASKS,
    READ_ONLY,
    TASK_TOOLS,
    Arguments,
    flat_tool,
    gateway_of,
)

# Built from the one list of media tools (a type checker cannot follow it, hence the ignores).
MediaToolName = Literal[tuple(MEDIA_TOOL_TASKS)]  # type: ignore[valid-type]

# Polls start quick (short jobs finish in about a second) and slow down so a long wait stays well
# inside the per-key rate limit.
FIRST_POLL_SECONDS = 0.2
MAX_POLL_SECONDS = 2.0


WaitSeconds = Annotated[
    int,
    Field(
        ge=1,
        le=MAX_WAIT_SECONDS,
        description="Longest wait before returning the job still running (then call job_wait).",
    ),
]


async def wait_for_job(
    ctx: Context, gateway: GatewayClient, job_id: str, *, timeout_seconds: float
) -> CallToolResult:
    """Poll the job until it ends or the time is up, reporting progress as it moves."""
    deadline = anyio.current_time() + timeout_seconds
    interval = FIRST_POLL_SECONDS
    reported = -1
    while True:
        try:
            job = await gateway.job(job_id, include_details=True)
        except GatewayCallError as exc:
            if exc.status != 429 or anyio.current_time() >= deadline:
                raise
            await anyio.sleep(exc.retry_after or MAX_POLL_SECONDS)
            continue
        done = job["status"] in TERMINAL
        percent = 100 if done else int(job["progress"]["percent"])
        # Progress must only grow; a message change at the same percent is not worth a notice.
        if percent > reported:
            await ctx.report_progress(percent, 100, job["progress"]["message"] or job["status"])
            reported = percent
        remaining = deadline - anyio.current_time()
        if done or remaining <= 0:
            balance = await gateway.balance()
            return JobResult.from_gateway(job, balance, timed_out=not done).tool_result()
        await anyio.sleep(min(interval, remaining))
        interval = min(interval * 1.5, MAX_POLL_SECONDS)


# --- cost_quote --------------------------------------------------------------------------------


class QuoteArguments(Arguments):
    tool: MediaToolName = Field(  # type: ignore[valid-type]
        description="The media tool to price, e.g. image_generate."
    )
    arguments: dict[str, Any] = Field(
        description="The arguments you would call that tool with (wait and the like are ignored)."
    )


class QuoteResult(Result):
    task: str
    tool: str
    usd_price_micros: int = Field(description="The exact price in USD micros (1 USD = 1,000,000).")
    usd_price: str
    usd_available_micros: int
    usd_available: str
    affordable: bool = Field(description="Whether the available balance covers the price.")
    estimated_duration_seconds: float | None = None
    input_adjustments: list[dict[str, Any]] = Field(
        default_factory=list, description="Changes the gateway would make to the arguments."
    )
    next: str


async def cost_quote(
    arguments: QuoteArguments, ctx: Context
) -> Annotated[CallToolResult, QuoteResult]:
    gateway = gateway_of(ctx)
    task = MEDIA_TOOL_TASKS[arguments.tool]
    # Split exactly as the tool would split them: the task's fields are what is priced.
    try:
        submit = SubmitArguments.model_validate(arguments.arguments).request_body(task)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, error['loc']))}: {error['msg']}" for error in exc.errors()
        )
        raise ToolError(f"Invalid arguments: {problems}.") from exc
    quote = await gateway.quote({"task": task, "input": submit["input"]})
    balance = await gateway.balance()
    price, available = quote["usdPriceMicros"], balance["usdAvailableMicros"]
    affordable = available >= price
    return QuoteResult(
        task=task,
        tool=arguments.tool,
        usd_price_micros=price,
        usd_price=usd(price),
        usd_available_micros=available,
        usd_available=usd(available),
        affordable=affordable,
        estimated_duration_seconds=quote.get("estimatedDurationSeconds"),
        input_adjustments=quote.get("inputAdjustments") or [],
        next=(
            f"Call {arguments.tool} with the same arguments to run it (nothing is charged yet)."
            if affordable
            else f"The balance is {usd(price - available)} short: buy credits first "
            "(packages_list), then call the tool."
        ),
    ).call_result()


# --- job_get / job_wait / job_cancel -----------------------------------------------------------


class JobArguments(Arguments):
    job_id: str = Field(min_length=1, max_length=64, description="The job id a media tool gave.")


class WaitArguments(JobArguments):
    timeout_seconds: WaitSeconds = DEFAULT_WAIT_SECONDS


async def job_get(arguments: JobArguments, ctx: Context) -> Annotated[CallToolResult, JobResult]:
    gateway = gateway_of(ctx)
    job = await gateway.job(arguments.job_id, include_details=True)
    return JobResult.from_gateway(job, await gateway.balance()).tool_result()


async def job_wait(arguments: WaitArguments, ctx: Context) -> Annotated[CallToolResult, JobResult]:
    return await wait_for_job(
        ctx, gateway_of(ctx), arguments.job_id, timeout_seconds=arguments.timeout_seconds
    )


async def job_cancel(arguments: JobArguments, ctx: Context) -> Annotated[CallToolResult, JobResult]:
    gateway = gateway_of(ctx)
    job = await gateway.cancel(arguments.job_id)
    return JobResult.from_gateway(job, await gateway.balance()).tool_result()


# --- jobs_list ---------------------------------------------------------------------------------


class ListArguments(Arguments):
    limit: int = Field(default=10, ge=1, le=100, description="Jobs per page, newest first.")
    cursor: str | None = Field(default=None, description="nextCursor of the previous page.")
    status: JobStatus | None = Field(default=None, description="Only jobs in this state.")
    tool: MediaToolName | None = Field(  # type: ignore[valid-type]
        default=None, description="Only jobs of this tool."
    )


class JobSummary(Result):
    job_id: str
    task: str
    tool: str
    status: JobStatus
    progress: JobProgress
    usd_charged_micros: int
    usd_charged: str
    created_at: str
    outputs: list[OutputFile]


class JobsPage(Result):
    jobs: list[JobSummary]
    has_more: bool
    next_cursor: str | None = Field(description="Pass as cursor to get the next page.")


async def jobs_list(arguments: ListArguments, ctx: Context) -> Annotated[CallToolResult, JobsPage]:
    params = {"limit": str(arguments.limit)}
    if arguments.cursor:
        params["cursor"] = arguments.cursor
    if arguments.status:
        params["status"] = arguments.status
    if arguments.tool:
        params["task"] = MEDIA_TOOL_TASKS[arguments.tool]
    page = await gateway_of(ctx).jobs(params)
    jobs = []
    for job in page["jobs"]:
        charged = job["billing"]["usdChargedMicros"]
        jobs.append(
            JobSummary(
                job_id=job["externalJobId"],
                task=job["task"],
                tool=TASK_TOOLS[job["task"]],
                status=job["status"],
                progress=JobProgress.model_validate(job["progress"]),
                usd_charged_micros=charged,
                usd_charged=usd(charged),
                created_at=job["createdAt"],
                outputs=[
                    OutputFile(
                        name=item["name"],
                        url=item["url"],
                        mime_type=item["mimeType"],
                        size_bytes=item["sizeBytes"],
                    )
                    for item in job.get("outputFiles") or []
                ],
            )
        )
    return JobsPage(
        jobs=jobs, has_more=page["hasMore"], next_cursor=page["nextCursor"]
    ).call_result()


def tools() -> list[Tool]:
    return [
        flat_tool(
            cost_quote,
            name="cost_quote",
            title="Price a media job",
            description="Get the exact price, the expected duration and your balance for a media "
            "tool call, without running it or charging anything. Use before any costly call. Free.",
            annotations=READ_ONLY,
        ),
        flat_tool(
            job_get,
            name="job_get",
            title="Get a job",
            description="Status, progress, price and output files of one job, at once. Free.",
            annotations=READ_ONLY,
        ),
        flat_tool(
            job_wait,
            name="job_wait",
            title="Wait for a job",
            description="Wait until a job finishes (or timeoutSeconds pass), sending progress "
            "notifications; returns its status and output files. Free.",
            annotations=READ_ONLY,
        ),
        flat_tool(
            job_cancel,
            name="job_cancel",
            title="Cancel a job",
            description="Cancel a queued or running job; its held price is released and nothing "
            "is charged. Free.",
            annotations=ToolAnnotations(
                read_only_hint=False,
                destructive_hint=True,
                idempotent_hint=True,
                open_world_hint=False,
            ),
        ),
        flat_tool(
            jobs_list,
            name="jobs_list",
            title="List jobs",
            description="Your media jobs, newest first, filtered by status or tool; pages with "
            "cursor. Free.",
            annotations=READ_ONLY,
        ),
    ]


def add_resources(server: MCPServer[Any]) -> None:
    @server.resource(
        "killa://jobs/{jobId}",
        name="job",
        title="A media job",
        description="A job's status, price and output files (the job_get result), as JSON.",
        mime_type="application/json",
    )
    # The parameter is named after the URI template's variable, as the SDK requires.
    async def job_resource(jobId: str, ctx: Context) -> str:
        gateway = gateway_of(ctx)
        try:
            job = await gateway.job(jobId, include_details=True)
            result = JobResult.from_gateway(job, await gateway.balance())
        except GatewayCallError as exc:
            raise ResourceError(str(exc)) from exc
        return json.dumps(result.model_dump(mode="json", by_alias=True))
