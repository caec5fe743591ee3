"""What the writer tests store and read back: idempotency records, the smallest ledger rows."""

from __future__ import annotations

from sqlalchemy import select

from backend.db.engine import Database
from backend.ledger.models import IdempotencyRecord


async def stored_keys(db: Database) -> set[str]:
    async with db.transaction(write=False) as session:
        return set(await session.scalars(select(IdempotencyRecord.key)))
