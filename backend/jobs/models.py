"""The jobs table is the truth about every media job; callbacks and run statistics hang off it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from backend.db.base import Base, UTCDateTime, utcnow

TERMINAL_STATUSES = ("succeeded", "failed", "canceled")


class MediaJob(Base):
    __tablename__ = "media_jobs"
    __table_args__ = (
        Index("ix_media_jobs_owner_created", "owner_id", "created_at", "id"),
        Index("ix_media_jobs_status", "status"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    task: Mapped[str] = mapped_column(String(64))
    # queued -> running -> succeeded | failed | canceled
    status: Mapped[str] = mapped_column(String(16), default="queued")
    request: Mapped[dict[str, Any]] = mapped_column(JSON)
    effective_input: Mapped[dict[str, Any]] = mapped_column(JSON)
    input_adjustments: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    price_micros: Mapped[int] = mapped_column(BigInteger)
    charged_micros: Mapped[int | None] = mapped_column(BigInteger)
    pricing_meta: Mapped[dict[str, Any]] = mapped_column(JSON)
    hold_id: Mapped[str | None] = mapped_column(String(64))
    staged_input_count: Mapped[int] = mapped_column(Integer, default=0)
    estimated_duration_seconds: Mapped[float] = mapped_column(Float)
    duration_estimate_meta: Mapped[dict[str, Any]] = mapped_column(JSON)
    progress: Mapped[int] = mapped_column(Integer, default=0)
    progress_message: Mapped[str | None] = mapped_column(String(500))
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # [{"key", "name", "mimeType", "sizeBytes", "properties"}]
    output_files: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    # Random path segment of the job's public output URLs (unguessable, unlike nothing else).
    output_token: Mapped[str] = mapped_column(String(64), unique=True)
    completion_callback_url: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outputs_expired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class CallbackDelivery(Base):
    """A signed POST of a job's terminal status to its completionCallbackUrl, retried."""

    __tablename__ = "job_callback_deliveries"
    __table_args__ = (Index("ix_job_callback_deliveries_due", "status", "next_attempt_at"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("media_jobs.id"), index=True)
    url: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending|delivered|failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CallbackAttempt(Base):
    __tablename__ = "job_callback_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    delivery_id: Mapped[str] = mapped_column(ForeignKey("job_callback_deliveries.id"), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int] = mapped_column(Integer)
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TaskRunStats(Base):
    """Learned run time per unit of work for each task (feeds `estimatedDurationSeconds`)."""

    __tablename__ = "task_run_stats"

    task: Mapped[str] = mapped_column(String(64), primary_key=True)
    samples: Mapped[int] = mapped_column(Integer, default=0)
    seconds_per_unit: Mapped[float] = mapped_column(Float)
    overhead_seconds: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
