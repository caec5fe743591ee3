"""Ledger invariants, checked with SQL against the tables themselves."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.ledger.models import Hold, LedgerAccount, LedgerEntry, LedgerTransaction


async def invariant_violations(session: AsyncSession) -> list[str]:
    problems: list[str] = []
    unbalanced = await session.execute(
        select(LedgerEntry.transaction_id, func.sum(LedgerEntry.amount_micros))
        .group_by(LedgerEntry.transaction_id)
        .having(func.sum(LedgerEntry.amount_micros) != 0)
    )
    problems += [f"transaction {txn} sums to {total}" for txn, total in unbalanced]

    total = await session.scalar(select(func.coalesce(func.sum(LedgerEntry.amount_micros), 0)))
    if total != 0:
        problems.append(f"all entries sum to {total}")

    sums = dict(
        (
            await session.execute(
                select(LedgerEntry.ledger_account_id, func.sum(LedgerEntry.amount_micros)).group_by(
                    LedgerEntry.ledger_account_id
                )
            )
        ).all()
    )
    for bucket in await session.scalars(
        select(LedgerAccount).where(LedgerAccount.owner_id.is_not(None))
    ):
        expected = int(sums.get(bucket.id, 0))
        if bucket.balance_micros != expected:
            problems.append(f"{bucket.id}: cached {bucket.balance_micros} != entries {expected}")
        if (bucket.balance_micros or 0) < 0:
            problems.append(f"{bucket.id}: negative balance {bucket.balance_micros}")

    endings = await session.execute(
        select(LedgerTransaction.hold_id, func.count())
        .where(LedgerTransaction.kind.in_(("capture", "release")))
        .group_by(LedgerTransaction.hold_id)
        .having(func.count() > 1)
    )
    problems += [f"hold {hold} ended {count} times" for hold, count in endings]

    endings_per_hold = (
        select(LedgerTransaction.hold_id, func.count().label("endings"))
        .where(LedgerTransaction.kind.in_(("capture", "release")))
        .group_by(LedgerTransaction.hold_id)
        .subquery()
    )
    holds = await session.execute(
        select(
            Hold.id,
            Hold.status,
            Hold.amount_micros,
            Hold.captured_micros,
            endings_per_hold.c.endings,
        ).outerjoin(endings_per_hold, endings_per_hold.c.hold_id == Hold.id)
    )
    for hold_id, status, amount, captured, endings in holds:
        if (status == "held") != (not endings):
            problems.append(f"hold {hold_id} is {status} with {endings or 0} endings")
        if captured is not None and captured > amount:
            problems.append(f"hold {hold_id} captured more than held")
    return problems
