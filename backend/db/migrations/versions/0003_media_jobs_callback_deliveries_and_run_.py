"""media jobs, callback deliveries and run statistics

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "task_run_stats",
        sa.Column("task", sa.String(length=64), nullable=False),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column("seconds_per_unit", sa.Float(), nullable=False),
        sa.Column("overhead_seconds", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("task", name=op.f("pk_task_run_stats")),
    )
    op.create_table(
        "media_jobs",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("owner_id", sa.String(length=64), nullable=False),
        sa.Column("task", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("effective_input", sa.JSON(), nullable=False),
        sa.Column("input_adjustments", sa.JSON(), nullable=False),
        sa.Column("price_micros", sa.BigInteger(), nullable=False),
        sa.Column("charged_micros", sa.BigInteger(), nullable=True),
        sa.Column("pricing_meta", sa.JSON(), nullable=False),
        sa.Column("hold_id", sa.String(length=64), nullable=True),
        sa.Column("staged_input_count", sa.Integer(), nullable=False),
        sa.Column("estimated_duration_seconds", sa.Float(), nullable=False),
        sa.Column("duration_estimate_meta", sa.JSON(), nullable=False),
        sa.Column("progress", sa.Integer(), nullable=False),
        sa.Column("progress_message", sa.String(length=500), nullable=True),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("error", sa.JSON(), nullable=True),
        sa.Column("output_files", sa.JSON(), nullable=True),
        sa.Column("output_token", sa.String(length=64), nullable=False),
        sa.Column("completion_callback_url", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outputs_expired_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["accounts.id"], name=op.f("fk_media_jobs_owner_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_media_jobs")),
        sa.UniqueConstraint("output_token", name=op.f("uq_media_jobs_output_token")),
    )
    with op.batch_alter_table("media_jobs", schema=None) as batch_op:
        batch_op.create_index(
            "ix_media_jobs_owner_created", ["owner_id", "created_at", "id"], unique=False
        )
        batch_op.create_index("ix_media_jobs_status", ["status"], unique=False)

    op.create_table(
        "job_callback_deliveries",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("job_id", sa.String(length=64), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["media_jobs.id"], name=op.f("fk_job_callback_deliveries_job_id_media_jobs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_callback_deliveries")),
    )
    with op.batch_alter_table("job_callback_deliveries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_job_callback_deliveries_due", ["status", "next_attempt_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_job_callback_deliveries_job_id"), ["job_id"], unique=False
        )

    op.create_table(
        "job_callback_attempts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("delivery_id", sa.String(length=64), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("attempted_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["job_callback_deliveries.id"],
            name=op.f("fk_job_callback_attempts_delivery_id_job_callback_deliveries"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_callback_attempts")),
    )
    with op.batch_alter_table("job_callback_attempts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_job_callback_attempts_delivery_id"), ["delivery_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("job_callback_attempts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_job_callback_attempts_delivery_id"))

    op.drop_table("job_callback_attempts")
    with op.batch_alter_table("job_callback_deliveries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_job_callback_deliveries_job_id"))
        batch_op.drop_index("ix_job_callback_deliveries_due")

    op.drop_table("job_callback_deliveries")
    with op.batch_alter_table("media_jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_media_jobs_status")
        batch_op.drop_index("ix_media_jobs_owner_created")

    op.drop_table("media_jobs")
    op.drop_table("task_run_stats")
