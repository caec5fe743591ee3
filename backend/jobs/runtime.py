"""The resources the jobs domain needs besides the database, built once per app."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.requests import HTTPConnection

from backend.db.engine import Database
from backend.db.group_commit import GroupCommit
from backend.engines.registry import EngineOptions, EngineRegistry, GeminiConfig
from backend.jobs.enqueue import JobQueue, enqueue
from backend.jobs.estimates import RunTimeModel
from backend.media.outputs import expected_output_names
from backend.media.pricing import price_table
from backend.settings import Settings
from backend.storage.blobs import BlobStore
from backend.storage.expiry import url_lifetime
from backend.storage.fetch import SafeFetcher
from backend.storage.local import LocalBlobStore
from backend.storage.s3 import S3BlobStore
from backend.storage.staging import InputStager

if TYPE_CHECKING:
    from backend.jobs.dispatcher import Dispatcher
    from backend.jobs.models import MediaJob
    from backend.jobs.schemas import OutputLinks


# A model installed while the gateway runs is taken within this time.
MODEL_PRESENCE_TTL_SECONDS = 5.0


@dataclass
class JobsRuntime:
    settings: Settings
    registry: EngineRegistry
    blobs: BlobStore
    fetcher: SafeFetcher
    stager: InputStager
    work_root: Path
    queue: JobQueue  # submits' group commit: hold + job row (backend/jobs/enqueue.py)
    estimates: RunTimeModel
    dispatcher: Dispatcher | None = None

    def work_dir(self, job_id: str) -> Path:
        return self.work_root / job_id

    def output_key(self, job: MediaJob, name: str) -> str:
        return f"jobs/{job.id}/{name}"

    def expected_urls(
        self, output_token: str, task: str, effective_input: dict[str, Any]
    ) -> list[str]:
        """The stable public URLs of a job's outputs, promised at submit."""
        return [
            self.settings.absolute_url(f"/outputs/{output_token}/{name}")
            for name in expected_output_names(task, effective_input)
        ]

    async def output_links(self, job: MediaJob) -> OutputLinks:
        from backend.jobs.schemas import OutputLinks

        expected = self.expected_urls(job.output_token, job.task, job.effective_input)
        downloadable: list[str] = []
        if job.status == "succeeded" and job.outputs_expired_at is None and job.finished_at:
            lifetime = url_lifetime(job.finished_at, now=datetime.now(UTC))
            if lifetime is not None:
                downloadable = [
                    await self.blobs.url(item["key"], expires_in=lifetime)
                    for item in job.output_files or []
                ]
        return OutputLinks(expected=expected, downloadable=downloadable)


def build_blob_store(settings: Settings) -> BlobStore:
    if settings.storage_backend == "s3":
        if not settings.s3_bucket:
            raise ValueError("KILLA_STORAGE_BACKEND=s3 needs KILLA_S3_BUCKET")
        return S3BlobStore(
            settings.s3_bucket,
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            access_key=settings.s3_access_key_id,
            secret_key=(
                settings.s3_secret_access_key.get_secret_value()
                if settings.s3_secret_access_key
                else None
            ),
            prefix=settings.s3_prefix,
        )
    # A key of its own for file URLs, so a leaked URL signature says nothing about sessions.
    url_key = hmac.new(settings.resolved_secret_key, b"file-urls", hashlib.sha256).digest()
    return LocalBlobStore(settings.data_dir / "storage", settings.base_url, url_key)


def engine_options(settings: Settings) -> EngineOptions:
    if settings.gemini_api_key is None:
        return EngineOptions()
    prices = price_table()["tasks"]["audio.speak"]["microsPerThousandCharacters"]
    return EngineOptions(
        gemini=GeminiConfig(
            api_key=settings.gemini_api_key.get_secret_value(),
            base_url=settings.gemini_base_url,
            model=settings.gemini_tts_model,
            price_micros_per_1k_chars=int(prices["gemini"]),
        )
    )


def build_runtime(settings: Settings, db: Database) -> JobsRuntime:
    fetcher = SafeFetcher(allowed_hosts=settings.fetch_allowed_hosts)
    return JobsRuntime(
        settings=settings,
        registry=EngineRegistry(
            settings.resolved_model_dir,
            settings.device,
            options=engine_options(settings),
            presence_ttl_seconds=MODEL_PRESENCE_TTL_SECONDS,
        ),
        blobs=build_blob_store(settings),
        fetcher=fetcher,
        stager=InputStager(fetcher=fetcher),
        work_root=settings.data_dir / "work",
        queue=GroupCommit(db, enqueue),
        estimates=RunTimeModel(),
    )


def jobs_runtime(connection: HTTPConnection) -> JobsRuntime:
    runtime: JobsRuntime = connection.app.state.jobs
    return runtime
