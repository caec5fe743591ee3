"""Media jobs: submit (validate, price, stage, hold, enqueue), read, list, cancel, and the
worker-side transitions (claim, progress, settle). The only glue between engines, storage and the
ledger."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from backend.accounts.service import Principal
from backend.db.base import utcnow
from backend.db.engine import Database
from backend.db.ids import new_id, new_token
from backend.engines.registry import EngineRegistry
from backend.http.errors import BadRequest, Conflict, Gone, NotFound, ServiceUnavailable
from backend.jobs import estimates
from backend.jobs.enqueue import ACTOR, IDEMPOTENCY_SCOPE, PendingJob
from backend.jobs.models import TERMINAL_STATUSES, CallbackDelivery, MediaJob
from backend.jobs.runtime import JobsRuntime
from backend.jobs.schemas import render_status
from backend.jobs.worker import request_cancel
from backend.ledger.money import format_usd
from backend.ledger.service import HoldAlreadySettled, ledger, request_fingerprint
from backend.media.adjustments import ResolvedInput, resolve_input
from backend.media.inputs import media_refs
from backend.media.pricing import PriceQuote, quote_price
from backend.media.tasks import MediaTask
from backend.media.validation import parse_media_job
from backend.storage.probe import media_duration_seconds
from backend.storage.staging import StagedInput

logger = logging.getLogger(__name__)

# Tasks priced from the measured duration of their staged media (see media/pricing.py).
_PRICED_BY_INPUT_DURATION = ("video.combine", "video.resize", "audio.annotation.reference")
LIST_PAGE_MAX = 100


class ModelUnavailableError(ServiceUnavailable):
    code = "MODEL_UNAVAILABLE"


class JobNotFound(NotFound):
    code = "JOB_NOT_FOUND"

    def __init__(self, job_id: str) -> None:
        super().__init__(f"No media job {job_id!r} on this account.", details={"jobId": job_id})


class JobAlreadyFinished(Conflict):
    code = "JOB_ALREADY_FINISHED"


@dataclass(frozen=True)
class Quote:
    task: MediaTask
    effective_input: dict[str, Any]
    adjustments: list[dict[str, Any]]
    price: PriceQuote


@dataclass(frozen=True)
class Submitted:
    status_code: int
    body: dict[str, Any]
    replayed: bool


def ensure_available(registry: EngineRegistry, task: str, effective_input: dict[str, Any]) -> None:
    if (
        task == "audio.speak"
        and effective_input.get("provider") == "gemini"
        and registry.options.gemini is None
    ):
        raise ModelUnavailableError(
            "audio.speak with provider gemini is not available on this server (no Gemini API "
            "key is configured). Nothing was charged. Use provider omnivoice instead.",
            details={"task": task, "provider": "gemini"},
        )
    row = registry.task_availability(task)
    if not row.present:
        raise ModelUnavailableError(
            f"{task} is not available on this server: no model is installed for it. "
            "Nothing was charged. Check GET /api/v1/capabilities for the tasks that are.",
            details={"task": task, "reason": row.reason},
        )


def _price(task: MediaTask, resolved: ResolvedInput, staged: list[StagedInput] | None) -> Quote:
    durations = None
    if staged is not None and task.task in _PRICED_BY_INPUT_DURATION:
        durations = [media_duration_seconds(item.path, field=item.field) for item in staged]
    price = quote_price(task, resolved, input_durations_seconds=durations)
    return Quote(task, resolved.effective_input, resolved.adjustments, price)


class JobService:
    # --- client side -------------------------------------------------------------------------

    async def quote(self, db: Database, runtime: JobsRuntime, body: Any) -> dict[str, Any]:
        task = parse_media_job(body)
        resolved = resolve_input(task, body)
        ensure_available(runtime.registry, task.task, resolved.effective_input)
        quote = _price(task, resolved, None)
        estimate = await runtime.estimates.estimate(db, task.task, quote.price.meta)
        return {
            "ok": True,
            "task": task.task,
            "usdPriceMicros": quote.price.micros,
            "usdPrice": format_usd(quote.price.micros),
            "pricingMeta": quote.price.meta,
            "estimatedDurationSeconds": estimate.seconds,
            "durationEstimateMeta": estimate.meta,
            "effectiveInput": quote.effective_input,
            "inputAdjustments": quote.adjustments,
            "charged": False,
        }

    async def submit(
        self,
        db: Database,
        runtime: JobsRuntime,
        principal: Principal,
        body: Any,
        *,
        idempotency_header: str | None,
    ) -> Submitted:
        task = parse_media_job(body)
        key = task.idempotency_key or idempotency_header
        idempotency = None
        if key is not None:
            idempotency = key, request_fingerprint(IDEMPOTENCY_SCOPE, body)
            replayed = await self._replay(db, principal, *idempotency)
            if replayed is not None:
                return replayed
        resolved = resolve_input(task, body)
        ensure_available(runtime.registry, task.task, resolved.effective_input)

        job_id = new_id("job")
        refs = media_refs(task.task, resolved.effective_input)
        # Only staged inputs need the job's folder before it runs.
        work_dir = runtime.work_dir(job_id) if refs else None
        try:
            if work_dir is not None:
                staged = await runtime.stager.stage(work_dir, refs)
                # Probing durations opens media files: keep that off the event loop.
                quote = await asyncio.to_thread(_price, task, resolved, staged)
            else:
                staged, quote = [], _price(task, resolved, [])
            estimate = await runtime.estimates.estimate(db, task.task, quote.price.meta)
            row = _new_job_row(job_id, principal, body, quote, estimate, len(staged))
            submitted = await runtime.queue.commit(
                PendingJob(
                    principal=principal,
                    row=row,
                    expected_urls=runtime.expected_urls(
                        row["output_token"], task.task, quote.effective_input
                    ),
                    idempotency=idempotency,
                )
            )
        except IntegrityError:
            remove_work_dir(work_dir)
            # A concurrent request with the same key committed first (the unique key makes this
            # insert wait for it, then fail): this one rolled back, its hold included.
            replayed = await self._replay(db, principal, *idempotency) if idempotency else None
            if replayed is None:
                raise
            return replayed
        except BaseException:
            remove_work_dir(work_dir)
            raise
        if runtime.dispatcher is not None:
            runtime.dispatcher.wake()
        return Submitted(201, submitted, replayed=False)

    async def _replay(
        self, db: Database, principal: Principal, key: str, fingerprint: str
    ) -> Submitted | None:
        """The stored first response for `key` (409 if it was for another body), or None."""
        async with db.transaction(write=False) as session:
            stored = await ledger.replay(
                session,
                principal.account_id,
                scope=IDEMPOTENCY_SCOPE,
                key=key,
                fingerprint=fingerprint,
            )
        return None if stored is None else Submitted(stored.status_code, stored.body, replayed=True)

    async def status(
        self,
        db: Database,
        runtime: JobsRuntime,
        principal: Principal,
        job_id: str,
        *,
        include_details: bool,
    ) -> dict[str, Any]:
        async with db.transaction(write=False) as session:
            job = await self._owned(session, principal, job_id)
        return await self.render(runtime, job, include_details=include_details)

    async def render(
        self, runtime: JobsRuntime, job: MediaJob, *, include_details: bool
    ) -> dict[str, Any]:
        links = await runtime.output_links(job)
        return render_status(job, links, include_details=include_details)

    async def page(
        self,
        db: Database,
        runtime: JobsRuntime,
        principal: Principal,
        *,
        limit: int,
        cursor: str | None,
        status: str | None,
        task: str | None,
    ) -> dict[str, Any]:
        query = select(MediaJob).where(MediaJob.owner_id == principal.account_id)
        if status is not None:
            query = query.where(MediaJob.status == status)
        if task is not None:
            query = query.where(MediaJob.task == task)
        if cursor is not None:
            created_at, last_id = _decode_cursor(cursor)
            query = query.where(
                or_(
                    MediaJob.created_at < created_at,
                    and_(MediaJob.created_at == created_at, MediaJob.id < last_id),
                )
            )
        query = query.order_by(MediaJob.created_at.desc(), MediaJob.id.desc()).limit(limit + 1)
        async with db.transaction(write=False) as session:
            jobs = list(await session.scalars(query))
        page, more = jobs[:limit], len(jobs) > limit
        return {
            "ok": True,
            "jobs": [await self.render(runtime, job, include_details=False) for job in page],
            "hasMore": more,
            "nextCursor": _encode_cursor(page[-1]) if more else None,
        }

    async def cancel(
        self, db: Database, runtime: JobsRuntime, principal: Principal, job_id: str
    ) -> dict[str, Any]:
        async with db.transaction() as session:
            job = await self._owned(session, principal, job_id, for_update=True)
            if job.status in TERMINAL_STATUSES:
                raise JobAlreadyFinished(
                    f"Job {job_id} already {job.status}; there is nothing to cancel.",
                    details={"jobId": job_id, "status": job.status},
                )
            if job.status == "queued":
                await self._finish(session, job, "canceled", error=_canceled_error())
            else:
                # A running job stops at its next progress checkpoint; the worker settles it.
                job.cancel_requested = True
                job.progress_message = "cancel requested"
                job.updated_at = utcnow()
                await session.flush()
        if job.status == "running":
            request_cancel(runtime.work_dir(job.id))
        return await self.render(runtime, job, include_details=False)

    async def output_redirect(
        self, db: Database, runtime: JobsRuntime, *, token: str, name: str
    ) -> str:
        """The signed download URL behind a job's stable output URL (`expectedOutputUrls`)."""
        async with db.transaction(write=False) as session:
            job = await session.scalar(select(MediaJob).where(MediaJob.output_token == token))
        if job is None:
            raise NotFound("No such output.", code="OUTPUT_NOT_FOUND")
        if job.status in ("queued", "running"):
            raise Conflict(
                f"The job is still {job.status}; its output is not ready yet. Poll "
                f"GET /api/v1/media/jobs?jobId={job.id} until it succeeds.",
                code="OUTPUT_NOT_READY",
            )
        if job.outputs_expired_at is not None:
            raise Gone(
                "This output was deleted after the 72-hour retention window.", code="OUTPUT_EXPIRED"
            )
        links = await runtime.output_links(job)
        for item, url in zip(job.output_files or [], links.downloadable, strict=False):
            if item["name"] == name:
                return url
        raise NotFound(f"The job has no output named {name!r}.", code="OUTPUT_NOT_FOUND")

    async def _owned(
        self, session: AsyncSession, principal: Principal, job_id: str, *, for_update: bool = False
    ) -> MediaJob:
        job = await session.get(
            MediaJob, job_id, with_for_update=for_update, populate_existing=True
        )
        # Someone else's job is reported exactly like a missing one.
        if job is None or job.owner_id != principal.account_id:
            raise JobNotFound(job_id)
        return job

    # --- worker side -------------------------------------------------------------------------

    async def claim(self, session: AsyncSession, job_id: str) -> MediaJob | None:
        """queued -> running, only if still queued: a duplicate wake-up runs nothing twice."""
        now = utcnow()
        claimed = await session.execute(
            update(MediaJob)
            .where(MediaJob.id == job_id, MediaJob.status == "queued")
            .values(
                status="running",
                attempts=MediaJob.attempts + 1,
                started_at=now,
                updated_at=now,
                progress_message="starting",
            )
            .execution_options(synchronize_session=False)
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            return None
        return await session.get(MediaJob, job_id, populate_existing=True)

    async def claimed(self, session: AsyncSession, job_id: str) -> MediaJob:
        job = await session.get(MediaJob, job_id, populate_existing=True)
        if job is None:
            raise LookupError(f"job {job_id} vanished while claimed")
        return job

    async def queued_ids(self, session: AsyncSession, *, limit: int) -> list[str]:
        rows = await session.scalars(
            select(MediaJob.id)
            .where(MediaJob.status == "queued")
            .order_by(MediaJob.created_at)
            .limit(limit)
        )
        return list(rows)

    async def record_progress(
        self, session: AsyncSession, job_id: str, percent: int, message: str
    ) -> None:
        await session.execute(
            update(MediaJob)
            .where(MediaJob.id == job_id, MediaJob.status == "running")
            .values(progress=percent, progress_message=message, updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )

    async def succeed(
        self,
        session: AsyncSession,
        job_id: str,
        *,
        outputs: list[dict[str, Any]],
        result: dict[str, Any],
        adjustments: list[dict[str, Any]],
        measured_cost_micros: int | None,
    ) -> MediaJob | None:
        job = await session.get(MediaJob, job_id, with_for_update=True, populate_existing=True)
        if job is None or job.status != "running":
            return None
        if job.cancel_requested:
            await self._finish(session, job, "canceled", error=_canceled_error())
            return job
        # Exact-bill tasks capture what was measured, never more than what was held.
        charged = (
            job.price_micros
            if measured_cost_micros is None
            else min(max(measured_cost_micros, 0), job.price_micros)
        )
        job.output_files = outputs
        job.result = result
        job.input_adjustments = [*job.input_adjustments, *adjustments]
        job.charged_micros = charged
        job.progress = 100
        job.progress_message = "done"
        await self._finish(session, job, "succeeded", capture_micros=charged)
        # Both set by _finish.
        assert job.finished_at is not None
        assert job.started_at is not None
        seconds = (job.finished_at - job.started_at).total_seconds()
        await estimates.learn(session, job.task, job.pricing_meta, seconds)
        return job

    async def fail(
        self, session: AsyncSession, job_id: str, *, code: str, message: str
    ) -> MediaJob | None:
        job = await session.get(MediaJob, job_id, with_for_update=True, populate_existing=True)
        if job is None or job.status not in ("queued", "running"):
            return None
        status = "canceled" if code == "CANCELED" or job.cancel_requested else "failed"
        error = _canceled_error() if status == "canceled" else {"code": code, "message": message}
        await self._finish(session, job, status, error=error)
        return job

    async def requeue_interrupted(self, session: AsyncSession, *, max_attempts: int) -> list[str]:
        """After a crash or restart: retry jobs that were running, or fail them (hold released)."""
        interrupted = list(
            await session.scalars(select(MediaJob).where(MediaJob.status == "running"))
        )
        for job in interrupted:
            if job.cancel_requested:
                await self._finish(session, job, "canceled", error=_canceled_error())
            elif job.attempts < max_attempts:
                job.status = "queued"
                job.progress = 0
                job.progress_message = "requeued after the worker stopped"
                job.updated_at = utcnow()
            else:
                await self._finish(
                    session,
                    job,
                    "failed",
                    error={
                        "code": "WORKER_LOST",
                        "message": f"The worker stopped during all {job.attempts} attempts; "
                        "nothing was charged. Retry the job.",
                    },
                )
        await session.flush()
        return [job.id for job in interrupted]

    async def _finish(
        self,
        session: AsyncSession,
        job: MediaJob,
        status: str,
        *,
        error: dict[str, Any] | None = None,
        capture_micros: int | None = None,
    ) -> None:
        """Move a job to a terminal state and settle its hold, in the caller's transaction."""
        now = utcnow()
        job.status = status
        job.error = error
        job.finished_at = now
        job.updated_at = now
        if job.started_at is None:
            job.started_at = now
        if job.hold_id is not None:
            try:
                if status == "succeeded":
                    await ledger.capture(session, job.hold_id, capture_micros, actor=ACTOR)
                else:
                    await ledger.release(
                        session, job.hold_id, actor=ACTOR, reason=f"job {job.id} {status}"
                    )
            except HoldAlreadySettled:
                logger.warning("hold of job %s was already settled", job.id)
        if job.completion_callback_url:
            session.add(
                CallbackDelivery(
                    id=new_id("whd"),
                    job_id=job.id,
                    url=job.completion_callback_url,
                    payload={},  # rendered at send time, so URLs are fresh
                    status="pending",
                    attempts=0,
                    next_attempt_at=now,
                    created_at=now,
                )
            )
        await session.flush()


def _new_job_row(
    job_id: str,
    principal: Principal,
    body: dict[str, Any],
    quote: Quote,
    estimate: estimates.DurationEstimate,
    staged_count: int,
) -> dict[str, Any]:
    """A new `media_jobs` row as a plain dict (submit is the hottest write). Columns that start
    empty (result, error, timings, outputs) are left to their NULL default."""
    now = utcnow()
    return {
        "id": job_id,
        "owner_id": principal.account_id,
        "task": quote.task.task,
        "status": "queued",
        "request": _without_inline_data(body),
        "effective_input": quote.effective_input,
        "input_adjustments": quote.adjustments,
        "price_micros": quote.price.micros,
        "pricing_meta": quote.price.meta,
        "hold_id": None,
        "staged_input_count": staged_count,
        "estimated_duration_seconds": estimate.seconds,
        "duration_estimate_meta": estimate.meta,
        "progress": 0,
        "progress_message": "queued",
        "output_token": new_token(),
        "completion_callback_url": quote.task.completion_callback_url,
        "attempts": 0,
        "cancel_requested": False,
        "created_at": now,
        "updated_at": now,
    }


def _canceled_error() -> dict[str, str]:
    return {"code": "CANCELED", "message": "Canceled at the client's request; nothing was charged."}


def _without_inline_data(body: dict[str, Any]) -> dict[str, Any]:
    """The request as stored: inline base64 media is replaced by its size (it was staged)."""

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {
                k: (
                    f"<{len(v)} base64 characters>"
                    if k == "dataBase64" and isinstance(v, str)
                    else strip(v)
                )
                for k, v in value.items()
            }
        if isinstance(value, list):
            return [strip(item) for item in value]
        return value

    stripped: dict[str, Any] = strip(body)
    return stripped


def _encode_cursor(job: MediaJob) -> str:
    raw = json.dumps([job.created_at.isoformat(), job.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created, job_id = json.loads(raw)
        return datetime.fromisoformat(created), str(job_id)
    except (ValueError, TypeError) as exc:
        raise BadRequest(
            "cursor: not a cursor returned by this endpoint",
            details={
                "errors": [{"field": "cursor", "rule": "format", "message": "invalid cursor"}]
            },
        ) from exc


def remove_work_dir(work_dir: Path | None) -> None:
    if work_dir is not None:
        shutil.rmtree(work_dir, ignore_errors=True)


jobs = JobService()
