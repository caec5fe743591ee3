"""Taking one hold the way submits take them: a writer transaction (`Database.run_in_writer`)."""

from __future__ import annotations

from backend.db.engine import Database
from backend.ledger.service import HoldRef, HoldRequest, InsufficientFunds, ledger


async def take_hold(
    db: Database, owner_id: str, amount_micros: int, *, reference: str = "job", actor: str = "t"
) -> HoldRef:
    request = HoldRequest(owner_id, amount_micros, reference, actor)
    [outcome] = await db.run_in_writer(lambda connection: ledger.hold_many(connection, [request]))
    if isinstance(outcome, InsufficientFunds):
        raise outcome
    return outcome
