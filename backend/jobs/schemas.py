"""Jobs request bodies and queries, and rendering jobs into the spec's MediaJobSubmitResponse /
MediaJobStatusResponse shapes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.datastructures import QueryParams

from backend.http.bodies import validation_failed
from backend.jobs.models import MediaJob
from backend.ledger.money import format_usd
from backend.ledger.service import Balance
from backend.media.tasks import TASK_MODELS
from backend.storage.expiry import cleanup_after, guaranteed_until


def iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


@dataclass(frozen=True)
class OutputLinks:
    expected: list[str]  # stable public URLs promised at submit
    downloadable: list[str]  # signed, direct URLs once the job succeeded


def charged_micros(job: MediaJob) -> int:
    """What the job costs the customer as things stand: held while in flight, then settled."""
    if job.status == "succeeded":
        return job.charged_micros or 0
    if job.status in ("failed", "canceled"):
        return 0
    return job.price_micros


def billing(job: MediaJob) -> dict[str, Any]:
    return _billing(charged_micros(job), job.pricing_meta, job.staged_input_count)


def _billing(charged: int, pricing_meta: dict[str, Any], staged_input_count: int) -> dict[str, Any]:
    return {
        "usdChargedMicros": charged,
        "usdCharged": format_usd(charged),
        "pricingMeta": pricing_meta,
        "stagedInputCount": staged_input_count,
    }


def render_submit(
    job: Mapping[str, Any], balance: Balance, expected_urls: list[str]
) -> dict[str, Any]:
    """A job just queued, from its new `media_jobs` row: while queued, it costs its price."""
    price = job["price_micros"]
    return {
        "ok": True,
        "task": job["task"],
        "externalJobId": job["id"],
        "status": job["status"],
        "usdChargedMicros": price,
        "usdCharged": format_usd(price),
        "usdBalanceMicros": balance.balance_micros,
        "usdBalance": format_usd(balance.balance_micros),
        "usdAvailableMicros": balance.available_micros,
        "usdAvailable": format_usd(balance.available_micros),
        "pricingMeta": job["pricing_meta"],
        "stagedInputCount": job["staged_input_count"],
        "estimatedDurationSeconds": job["estimated_duration_seconds"],
        "durationEstimateMeta": job["duration_estimate_meta"],
        "effectiveInput": job["effective_input"],
        "inputAdjustments": job["input_adjustments"],
        "billing": _billing(price, job["pricing_meta"], job["staged_input_count"]),
        "expectedOutputUrls": expected_urls,
        "createdAt": iso(job["created_at"]),
    }


def render_status(job: MediaJob, links: OutputLinks, *, include_details: bool) -> dict[str, Any]:
    finished = job.finished_at
    duration_ms = (
        round((finished - job.started_at).total_seconds() * 1000)
        if finished and job.started_at
        else None
    )
    outputs = job.output_files or []
    body: dict[str, Any] = {
        "ok": True,
        "task": job.task,
        "externalJobId": job.id,
        "status": job.status,
        "progress": {"percent": job.progress, "message": job.progress_message},
        "estimatedDurationSeconds": job.estimated_duration_seconds,
        "durationEstimateMeta": job.duration_estimate_meta,
        "billing": billing(job),
        "createdAt": iso(job.created_at),
        "updatedAt": iso(job.updated_at),
        "startedAt": iso(job.started_at),
        "finishedAt": iso(job.finished_at),
        "durationMs": duration_ms,
        "attempts": job.attempts,
        "expectedOutputUrls": links.expected,
        "downloadableOutputUrls": links.downloadable,
        "outputFiles": [
            {
                "name": item["name"],
                "url": url,
                "mimeType": item["mimeType"],
                "sizeBytes": item["sizeBytes"],
                "properties": item["properties"],
            }
            for item, url in zip(outputs, links.downloadable, strict=False)
        ]
        if job.status == "succeeded" and job.outputs_expired_at is None
        else None,
        "outputUrl": links.downloadable[0] if links.downloadable else None,
        "generatedImageIds": None,
        "error": job.error,
    }
    if job.status == "succeeded":
        body["result"] = job.result or {}
    if finished is not None and job.status == "succeeded":
        body["outputsGuaranteedUntil"] = iso(guaranteed_until(finished))
        body["outputsCleanupAfter"] = iso(cleanup_after(finished))
        body["outputsExpired"] = job.outputs_expired_at is not None
        if job.outputs_expired_at is not None:
            body["outputsExpiredAt"] = iso(job.outputs_expired_at)
            body["outputsNotice"] = (
                "Outputs were deleted after the 72-hour retention window; run the job again "
                "to regenerate them."
            )
    if include_details:
        body["effectiveInput"] = job.effective_input
        body["inputAdjustments"] = job.input_adjustments
    return body


JobStatus = Literal["queued", "running", "succeeded", "failed", "canceled"]


class _Query(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @classmethod
    def from_query(cls, params: QueryParams) -> Self:
        try:
            return cls.model_validate(dict(params))
        except ValidationError as exc:
            raise validation_failed(exc) from exc


class StatusQuery(_Query):
    job_id: str = Field(alias="jobId", min_length=1, max_length=64)
    include_details: bool = Field(default=False, alias="includeDetails")


class ListJobsQuery(_Query):
    limit: int = Field(default=20, ge=1, le=100)
    cursor: str | None = Field(default=None, max_length=500)
    status: JobStatus | None = None
    task: Literal[tuple(TASK_MODELS)] | None = None  # type: ignore[valid-type]


class CancelJobRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    job_id: str = Field(alias="jobId", min_length=1, max_length=64)
