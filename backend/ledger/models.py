"""Ledger tables. Only `backend/ledger/service.py` writes them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from backend.db.base import Base, UTCDateTime, utcnow


class LedgerAccount(Base):
    """A bucket of money. Each customer has `available` and `held`; the house has `revenue` and
    one `funding:<source>` contra account per way money comes in (grant, stripe, x402, ...)."""

    __tablename__ = "ledger_accounts"
    # The last line of defence behind the conditional hold: no customer bucket below zero.
    __table_args__ = (
        CheckConstraint("owner_id IS NULL OR balance_micros >= 0", name="customer_not_negative"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner_id: Mapped[str | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="RESTRICT"), index=True
    )
    kind: Mapped[str] = mapped_column(String(32))
    # Cached sum of entries, kept only for customer buckets (the conditional hold reads it) and
    # updated in the same transaction as the entries. House accounts are summed on demand so a
    # busy revenue account is never a hot row.
    balance_micros: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LedgerTransaction(Base):
    """One money movement and its audit record: who, what, why, and the external reference."""

    __tablename__ = "ledger_transactions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # credit | hold | capture | release
    owner_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    amount_micros: Mapped[int] = mapped_column(BigInteger)
    hold_id: Mapped[str | None] = mapped_column(String(64), index=True)
    external_ref: Mapped[str | None] = mapped_column(String(255), unique=True)
    actor: Mapped[str] = mapped_column(String(255))
    reason: Mapped[str] = mapped_column(String(1000))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LedgerEntry(Base):
    """One leg of a transaction; the legs of a transaction sum to zero."""

    __tablename__ = "ledger_entries"
    __table_args__ = (Index("ix_ledger_entries_account", "ledger_account_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    transaction_id: Mapped[str] = mapped_column(ForeignKey("ledger_transactions.id"), index=True)
    ledger_account_id: Mapped[str] = mapped_column(ForeignKey("ledger_accounts.id"))
    amount_micros: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Hold(Base):
    """Money set aside for a job; it ends exactly once, captured or released."""

    __tablename__ = "ledger_holds"
    __table_args__ = (
        CheckConstraint("amount_micros >= 0", name="amount_not_negative"),
        CheckConstraint(
            "captured_micros IS NULL OR captured_micros <= amount_micros",
            name="capture_within_hold",
        ),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    amount_micros: Mapped[int] = mapped_column(BigInteger)
    captured_micros: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default="held")  # held | captured | released
    reference: Mapped[str | None] = mapped_column(String(255), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class IdempotencyRecord(Base):
    """The first response to a money-moving request, replayed for the same key and body."""

    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("owner_id", "scope", "key", name="uq_idempotency_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    owner_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    scope: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
