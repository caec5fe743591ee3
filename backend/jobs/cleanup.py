"""The periodic task that deletes job outputs 72 h after completion and marks the jobs."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from backend.db.engine import Database
from backend.jobs.models import MediaJob
from backend.jobs.runtime import JobsRuntime
from backend.storage.expiry import OutputBlob, cleanup_cutoff, purge_expired


async def purge_expired_outputs(
    db: Database, runtime: JobsRuntime, *, now: datetime | None = None
) -> list[str]:
    """Delete due outputs; returns the ids of jobs whose outputs are now gone."""
    now = now or datetime.now(UTC)
    async with db.transaction(write=False) as session:
        due = list(
            await session.scalars(
                select(MediaJob).where(
                    MediaJob.status == "succeeded",
                    MediaJob.outputs_expired_at.is_(None),
                    MediaJob.finished_at <= cleanup_cutoff(now),
                )
            )
        )
    expired = []
    for job in due:
        assert job.finished_at is not None
        blobs = [OutputBlob(item["key"], job.finished_at) for item in job.output_files or []]
        report = await purge_expired(runtime.blobs, blobs, now=now)
        if not report.failed and not report.not_due:
            expired.append(job.id)
    if expired:
        async with db.transaction() as session:
            for job_id in expired:
                purged = await session.get(MediaJob, job_id)
                if purged is not None:
                    purged.outputs_expired_at = now
    return expired
