"""sign-in: email codes, browser sessions, device links

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "email_codes",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("requested_ip", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("consumed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_email_codes")),
    )
    with op.batch_alter_table("email_codes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_email_codes_email"), ["email"], unique=False)
        batch_op.create_index(batch_op.f("ix_email_codes_expires_at"), ["expires_at"], unique=False)

    op.create_table(
        "browser_sessions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=True),
        sa.Column("user_agent", sa.String(length=256), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_browser_sessions_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_browser_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_browser_sessions_token_hash")),
    )
    with op.batch_alter_table("browser_sessions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_browser_sessions_account_id"), ["account_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_browser_sessions_expires_at"), ["expires_at"], unique=False
        )

    op.create_table(
        "device_links",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("device_code_hash", sa.String(length=64), nullable=False),
        sa.Column("user_code", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("client_name", sa.String(length=128), nullable=False),
        sa.Column("key_label", sa.String(length=64), nullable=True),
        sa.Column("requested_ip", sa.String(length=64), nullable=True),
        sa.Column("interval_seconds", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_polled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("account_id", sa.String(length=64), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("api_key_id", sa.String(length=64), nullable=True),
        sa.Column("consumed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_device_links_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["api_key_id"], ["api_keys.id"], name=op.f("fk_device_links_api_key_id_api_keys")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_device_links")),
        sa.UniqueConstraint("device_code_hash", name=op.f("uq_device_links_device_code_hash")),
        sa.UniqueConstraint("user_code", name=op.f("uq_device_links_user_code")),
    )
    with op.batch_alter_table("device_links", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_device_links_account_id"), ["account_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_device_links_expires_at"), ["expires_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("device_links", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_device_links_expires_at"))
        batch_op.drop_index(batch_op.f("ix_device_links_account_id"))

    op.drop_table("device_links")
    with op.batch_alter_table("browser_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_browser_sessions_expires_at"))
        batch_op.drop_index(batch_op.f("ix_browser_sessions_account_id"))

    op.drop_table("browser_sessions")
    with op.batch_alter_table("email_codes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_email_codes_expires_at"))
        batch_op.drop_index(batch_op.f("ix_email_codes_email"))

    op.drop_table("email_codes")
